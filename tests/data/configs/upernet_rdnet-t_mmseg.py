# An mmseg config using a densedet backbone: mmseg's own UperNet ADE20K recipe with RDNet-T.
_base_ = ['mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py']
custom_imports = dict(imports=['densedet'], allow_failed_imports=False)
model = dict(
    pretrained=None,  # the base's ImageNet ResNet-50; RDNet's weights go in init_cfg
    backbone=dict(_delete_=True, type='RDNet', arch='tiny', out_indices=(0, 1, 2, 3), drop_path_rate=0.1),
    decode_head=dict(in_channels=[256, 440, 744, 1040]),
    auxiliary_head=dict(in_channels=744))  # the third level, as for ResNet's 1024
optim_wrapper = dict(constructor='DenseLayerDecayConstructor',
                     paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise'))
