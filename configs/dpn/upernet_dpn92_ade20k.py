# UperNet + DPN-92 on ADE20K (mmseg's UperNet recipe for CNN backbones: SGD, 160k, 512x512).
# ImageNet weights: backbone.init_cfg=dict(type='Pretrained', checkpoint=<timm dpn92 checkpoint>).
_base_ = ['../_base_/upernet_cnn_160k_ade20k.py']
model = dict(
    backbone=dict(_delete_=True, type='DPN', arch='92', out_indices=(0, 1, 2, 3),
                  norm_cfg=dict(type='SyncBN', requires_grad=True)),
    decode_head=dict(in_channels=[336, 704, 1552, 2688]),
    auxiliary_head=dict(in_channels=1552))
