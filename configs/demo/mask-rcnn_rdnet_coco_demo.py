# `make demo-coco`: configs/mask-rcnn_rdnet_coco.py (Mask R-CNN + FPN, RDNet-T, AdamW + stage-wise
# lr decay) trained on the embedded procedural COCO-format data (tools/data/make_demo_coco.py)
# on CPU in about 7 minutes (bbox AP 29 / segm AP 43 on 2026-11-30, README). Only the data (root, classes,
# checked COCO dataset), the image scale and the schedule differ from the full recipe; the
# schedule includes the detector's train_cfg sample counts (RPN proposals and sampled RoIs per
# image), cut for CPU time: on 2 cores the mask head's convolutions over positive RoIs and mmcv's
# CPU RoIAlign backward cost more than the backbone (docs/benchmarks.md).
_base_ = ['../mask-rcnn_rdnet_coco.py']
data_root = 'data/coco_demo/'
metainfo = dict(classes=('disc', 'box', 'triangle'), palette=[(220, 40, 40), (40, 60, 220), (60, 200, 40)])
num_classes = 3
model = dict(
    roi_head=dict(bbox_head=dict(num_classes=num_classes), mask_head=dict(num_classes=num_classes)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=300), rcnn=dict(sampler=dict(num=128))))

# Image scale: the 160x192 demo images, mildly multi-scale in training.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoiceResize', scales=[(144, 1333), (160, 1333), (176, 1333)], keep_ratio=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 1333), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
dataset_type = 'CheckedCocoDataset'
# Workers started per epoch (seeded by randomness.seed each time): --resume then continues exactly
# (densedet.engine.RandomStateHook); persistent workers carry their random streams across epochs.
train_dataloader = dict(
    batch_size=4, num_workers=2, persistent_workers=False,
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train2017.json', data_prefix=dict(img='train2017/'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=2,
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val2017.json', data_prefix=dict(img='val2017/'),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

# Schedule: 16 iterations per epoch (64 images, batch 4), 6 epochs, the recipe's lr 3e-4;
# warm-up over the first epoch, lr x0.1 for the last one. Validation after epoch 3 and at the
# end, so the log shows AP rising.
max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=3)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=16),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[5], gamma=0.1),
]
default_hooks = dict(logger=dict(interval=8), checkpoint=dict(interval=max_epochs))
randomness = dict(seed=0)
