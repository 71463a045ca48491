# Mask R-CNN + FPN with a VoVNetV2-39 backbone (CenterMask's V-39), mmdet's model, COCO data,
# schedule and CocoMetric unchanged; frozen stem, BN in eval mode.
_base_ = ['../_base_/mask-rcnn_fpn_1x_coco.py']
model = dict(
    backbone=dict(_delete_=True, type='VoVNet', arch='39', out_indices=(0, 1, 2, 3), frozen_stages=0,
                  norm_eval=True, norm_cfg=dict(type='BN', requires_grad=True)),
    neck=dict(in_channels=[256, 512, 768, 1024]))
