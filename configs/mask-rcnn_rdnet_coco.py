# Mask R-CNN + FPN with RDNet-T on COCO: the official RDNet recipe on mmdet 3.x
# (mmdet's Mask R-CNN, COCO dataset and CocoMetric unchanged). 3x schedule, AdamW lr 3e-4,
# wd 0.05, stage-wise lr decay 0.95, drop path 0.2, GroupNorm(1, C) on each backbone output
# (as the official timm wrapper), SyncBN in the FPN.
# Paper (Kim et al. 2024, Table 7): 47.5 box AP / 42.4 mask AP.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', '_base_/datasets/coco_instance_ms_crop.py',
    'mmdet::_base_/default_runtime.py', '_base_/schedules/rdnet_coco_3x_adamw.py'
]
custom_imports = dict(imports=['densedet'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='RDNet',
        arch='tiny',
        drop_path_rate=0.2,
        out_norm_cfg=dict(type='GN', num_groups=1),
        # ImageNet weights: init_cfg=dict(type='Pretrained', checkpoint='rdnet_tiny.nv_in1k.safetensors')
        init_cfg=None),
    neck=dict(in_channels=[256, 440, 744, 1040], norm_cfg=dict(type='SyncBN', requires_grad=True)))
