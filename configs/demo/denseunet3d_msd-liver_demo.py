# `make demo-3d`: configs/denseunet3d/denseunet3d_msd-liver.py on the embedded synthetic
# MSD-layout task (tools/data/make_demo_msd.py). Changes only the data (root, cases, spacing,
# patch), the network width (a small DenseNet: growth 8, blocks 2/2/3/2; the full one does
# not train in minutes on 2 CPU cores) and the schedule. Evaluates Dice / HD95 on 2 held-out
# cases; `tools/test.py --out DIR` writes the predicted NIfTI files.
_base_ = ['../denseunet3d/denseunet3d_msd-liver.py']

data_root = 'data/msd_demo/Task03_Liver'
spacing = (2.5, 1.5, 1.5)
patch_size = (16, 32, 32)
train_pipeline = [
    dict(type='LoadVolumeFromFile'),
    dict(type='IntensityWindow', window=(-200, 250), out_range=(0, 1)),
    dict(type='ResampleSpacing', spacing=spacing),
    dict(type='RandomPatchCrop', patch_size=patch_size, fg_ratio=1 / 3),
    dict(type='RandomFlip3D', prob=0.5, axes=(0, 1, 2)),
    dict(type='RandomRot90', prob=0.5, axes=(1, 2)),
    dict(type='PackVolumeInputs'),
]
test_pipeline = [
    dict(type='LoadVolumeFromFile'),
    dict(type='IntensityWindow', window=(-200, 250), out_range=(0, 1)),
    dict(type='ResampleSpacing', spacing=spacing),
    dict(type='PackVolumeInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, cases=[f'liver_{i}' for i in range(8)], pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, cases=['liver_8', 'liver_9'], pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='VolumeMetric', hd95=True, per_case=True)
test_evaluator = val_evaluator

model = dict(
    backbone=dict(arch=dict(growth_rate=8, block_config=(2, 2, 3, 2), stem_channels=16)),
    decode_head=dict(in_channels=[16, 32, 32, 40, 36], up_channels=(32, 24, 16, 16, 16)),
    test_cfg=dict(roi_size=patch_size, overlap=0.5, sw_batch_size=4, flip_axes=None))

# schedule: 1000 iterations of 4 patches (about 4 minutes on 2 cores), AdamW (nnU-Net's SGD at
# momentum 0.99 needs far more steps)
max_iters = 1000
optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=20, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters // 2)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters // 2, max_keep_ckpts=2))
