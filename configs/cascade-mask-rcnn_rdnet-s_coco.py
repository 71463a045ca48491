# Cascade Mask R-CNN + FPN with RDNet-S: wd 0.1, stage-wise lr decay 0.7, drop path 0.4.
# Paper (Kim et al. 2024, Table 7): 52.3 box AP / 45.4 mask AP.
_base_ = ['cascade-mask-rcnn_rdnet_coco.py']
model = dict(backbone=dict(arch='small', drop_path_rate=0.4), neck=dict(in_channels=[264, 512, 760, 1264]))
optim_wrapper = dict(optimizer=dict(weight_decay=0.1), paramwise_cfg=dict(decay_rate=0.7))
