# CenterNet ("Objects as Points") with DLA-34 and DLA-Up to stride 4, the paper's DLA detector, on mmdet's
# CenterNet recipe (512x512 crops, batch 16 = 8 GPUs x 2 ... as mmdet's centernet_r18 config, 140 epochs):
# mmdet's CenterNetHead, dataset, schedule and CocoMetric; DLAUpNeck aggregates DLA levels 2-5 into one
# 64-channel map at stride 4. (The paper's DLA-34 also uses deformable convolutions in its up path; this is
# the plain IDA-Up of the DLA paper.)
_base_ = ['mmdet::centernet/centernet_r18_8xb16-crop512-140e_coco.py']
custom_imports = dict(imports=['densedet'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='DLA', arch='34', out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN')),
    neck=dict(_delete_=True, type='DLAUpNeck', in_channels=[64, 128, 256, 512]),
    bbox_head=dict(in_channels=64))
