# Mask R-CNN + FPN with a HarDNet-68 backbone: mmdet's model, COCO data, schedule and CocoMetric
# unchanged; frozen stem, BN in eval mode.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', 'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['densedet'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='HarDNet', arch='68', out_indices=(0, 1, 2, 3), frozen_stages=0,
                  norm_eval=True),
    neck=dict(in_channels=[128, 320, 640, 1024]))
