# An mmdet config using a densedet backbone: mmdet's own Mask R-CNN + FPN with RDNet-T.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
custom_imports = dict(imports=['densedet'], allow_failed_imports=False)
default_scope = 'mmdet'
model = dict(
    backbone=dict(_delete_=True, type='RDNet', arch='tiny', drop_path_rate=0.2,
                  out_norm_cfg=dict(type='GN', num_groups=1)),
    neck=dict(in_channels=[256, 440, 744, 1040]))
