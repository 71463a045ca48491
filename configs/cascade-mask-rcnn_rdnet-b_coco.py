# Cascade Mask R-CNN + FPN with RDNet-B: wd 0.05, stage-wise lr decay 0.7, drop path 0.6.
# Paper (Kim et al. 2024, Table 7): 52.9 box AP / 46.0 mask AP.
_base_ = ['cascade-mask-rcnn_rdnet_coco.py']
model = dict(backbone=dict(arch='base', drop_path_rate=0.6), neck=dict(in_channels=[408, 584, 1000, 1760]))
optim_wrapper = dict(optimizer=dict(weight_decay=0.05), paramwise_cfg=dict(decay_rate=0.7))
