# Cascade Mask R-CNN + FPN with RDNet-T on COCO, the official RDNet recipe on mmdet 3.x:
# 3x schedule, AdamW lr 8e-5, wd 0.05, stage-wise lr decay 0.8, drop path 0.4, GIoU box loss,
# 1000-iteration warm-up. Paper (Kim et al. 2024, Table 7): 51.6 box AP / 44.6 mask AP.
_base_ = [
    '_base_/models/cascade-mask-rcnn_rdnet_4conv1fc-giou.py', '_base_/datasets/coco_instance_ms_crop.py',
    'mmdet::_base_/default_runtime.py', '_base_/schedules/rdnet_coco_3x_adamw.py'
]
model = dict(backbone=dict(arch='tiny', drop_path_rate=0.4), neck=dict(in_channels=[256, 440, 744, 1040]))
warmup_iters = 1000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='MultiStepLR', begin=0, end={{_base_.max_epochs}}, by_epoch=True, milestones=[27, 33], gamma=0.1),
]
optim_wrapper = dict(optimizer=dict(lr=8e-5, weight_decay=0.05), paramwise_cfg=dict(decay_rate=0.8))
