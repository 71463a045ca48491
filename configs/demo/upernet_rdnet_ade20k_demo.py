# `make demo`: configs/upernet_rdnet_ade20k.py on the embedded procedural ADE20K-layout data
# (tools/data/make_demo_ade20k.py). Changes only the data root, the crop size (512 -> 128, the
# resize scale shrunk by the same factor) and the schedule (short, higher lr: no pretrained
# weights here). Trains in a few minutes on 2 CPU cores.
_base_ = ['../upernet_rdnet_ade20k.py']

data_root = 'data/ade20k_demo/ADEChallengeData2016'
crop_size = (128, 128)
scale = (512, 128)
num_classes = 150
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='CheckSegSample', num_classes=num_classes),
    dict(type='RandomResize', scale=scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='CheckSegSample', num_classes=num_classes, check_size=False),
    dict(type='PackSegInputs'),
]
# TTA (tools/test.py --tta): the flagship's ratios apply to the original image size; here they
# scale the demo's test scale, so every pass stays about the size of the plain test.
img_ratios = [0.75, 1.0, 1.25]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale=(int(scale[0] * r), int(scale[1] * r)), keep_ratio=True) for r in img_ratios],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadAnnotations', reduce_zero_label=True)],
        [dict(type='PackSegInputs')]]),
]
train_dataloader = dict(
    batch_size=2, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
model = dict(
    data_preprocessor=dict(size=crop_size),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(85, 85)))

# schedule: 150 iterations of 2 images (about 4 minutes on 2 cores)
max_iters = 150
optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=0.03), clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=20, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters // 2)
# seeded: weights, sampler order, augmentations, drop path (README: three seeds and their spread)
randomness = dict(seed=0)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters // 2, max_keep_ckpts=2))
