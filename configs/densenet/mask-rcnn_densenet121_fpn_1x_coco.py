# Mask R-CNN + FPN with a DenseNet-121 backbone, mmdet's own model, COCO dataset, schedule and
# CocoMetric (bbox + segm) unchanged. Frozen stem, BN in eval mode, as mmdet's ResNet configs.
_base_ = ['../_base_/mask-rcnn_fpn_1x_coco.py']
model = dict(
    backbone=dict(_delete_=True, type='DenseNet', arch='121', out_indices=(0, 1, 2, 3), frozen_stages=1,
                  norm_eval=True, norm_cfg=dict(type='BN', requires_grad=True)),
    neck=dict(in_channels=[256, 512, 1024, 1024]))
