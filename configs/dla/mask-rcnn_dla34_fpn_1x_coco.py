# Mask R-CNN + FPN with a DLA-34 backbone: mmdet's model, COCO data, schedule and CocoMetric
# unchanged; frozen stem, BN in eval mode.
_base_ = ['../_base_/mask-rcnn_fpn_1x_coco.py']
model = dict(
    backbone=dict(_delete_=True, type='DLA', arch='34', out_indices=(0, 1, 2, 3), frozen_stages=0,
                  norm_eval=True),
    neck=dict(in_channels=[64, 128, 256, 512]))
