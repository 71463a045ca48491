# The synthetic hard task of the head-to-head benchmark (tools/analysis/benchmark.py --crossval-nnunet,
# tools/data/make_hard_volume_task.py) in nnU-Net v2's raw layout: preprocessed path, nnU-Net v2's
# augmentation, nnU-Net's SGD schedule for `max_iters`, no validation during training (the
# cross-validation predicts the held-out cases after training). The benchmark writes a config on top
# of the model configs with nnU-Net's planned patch, batch size and the budget; the values here are
# what nnU-Net plans for the default task.
_base_ = ['../schedules/volume_sgd_poly.py', '../volume_runtime.py']
raw_root = 'work_dirs/bench_crossval/raw/Dataset502_HardLiver'
preprocessed_root = 'work_dirs/bench_crossval/densedet_preprocessed'
plans_file = preprocessed_root + '/plans.json'
splits_file = 'work_dirs/bench_crossval/splits.json'
fold = 0
patch_size = (20, 56, 56)  # nnU-Net's 3d_fullres plan for the default task
load_size = (56, 92, 92)  # densedet.transforms.spatial_input_size(patch_size, (30, 30, 30), 0.85)
max_iters = 250  # nnU-Net's one epoch (250 iterations of batch 2)

preprocess = dict(
    dataset=dict(type='NnUNetDataset', data_root=raw_root),
    pipeline=[
        dict(type='LoadVolumeFromFile'),
        dict(type='CropToNonzero'),
        dict(type='NormalizeFromPlans', plans_file=plans_file),
        dict(type='ResampleSpacing', plans_file=plans_file),
    ],
    out_dir=preprocessed_root,
    plans_file=plans_file,
    memory_gb=8)
train_pipeline = [
    dict(type='LoadPreprocessedPatch', patch_size=load_size, crop_size=patch_size, fg_ratio=1 / 3),
    dict(type='NnUNetAugmentation', patch_size=patch_size),  # nnU-Net v2's: rotation, zoom, intensity, mirror
    dict(type='PackVolumeInputs'),
]
test_pipeline = [
    dict(type='LoadVolumeFromFile'),
    dict(type='NormalizeFromPlans', plans_file=plans_file),
    dict(type='ResampleSpacing', plans_file=plans_file),
    dict(type='PackVolumeInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=1, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='PreprocessedVolumeDataset', data_root=preprocessed_root, splits_file=splits_file, fold=fold,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='NnUNetDataset', data_root=raw_root, splits_file=splits_file, fold=fold, fold_part='val',
                 pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='VolumeMetric', hd95=False)
test_evaluator = val_evaluator
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=50, max_keep_ckpts=1,
                                     save_best=None))
randomness = dict(seed=0)
