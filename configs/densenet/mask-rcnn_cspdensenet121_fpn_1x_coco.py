# Mask R-CNN + FPN with a CSPDenseNet-121 backbone (cross-stage partial dense stages, CSPNet): the DenseNet-121
# config with half of each stage's channels through its dense block.
_base_ = ['./mask-rcnn_densenet121_fpn_1x_coco.py']
model = dict(backbone=dict(arch='csp121'), neck=dict(in_channels=[144, 246, 476, 434]))
