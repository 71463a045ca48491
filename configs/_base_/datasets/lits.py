# LiTS (volume-N.nii / segmentation-N.nii, searched recursively; 0 background, 1 liver,
# 2 tumour). H-DenseUNet's input: HU clipped to [-200, 250] minus the official mean 48
# (window -> [-248, 202]); no resampling (the network is slice-wise in-plane, depth-aware in
# 3D); training crops of `slice_depth` x 224 x 224 always centred on foreground, liver or
# tumour with equal odds (the official sampler), flips and in-plane rot90. The 131 labelled
# cases: 0-99 train, 100-130 validate (the paper trained on all 131 and tested on the
# challenge's 70 unlabelled cases).
dataset_type = 'LiTSDataset'
data_root = 'data/LiTS'
slice_depth = 12  # the paper's; the official code uses 8
patch_size = (slice_depth, 224, 224)
hu_window = dict(type='IntensityWindow', window=(-200, 250), out_range=(-248, 202))
train_pipeline = [
    dict(type='LoadVolumeFromFile'),
    hu_window,
    dict(type='RandomPatchCrop', patch_size=patch_size, fg_ratio=1.0),
    dict(type='RandomFlip3D', prob=0.5, axes=(1, 2)),
    dict(type='RandomRot90', prob=0.5, axes=(1, 2)),
    dict(type='PackVolumeInputs'),
]
test_pipeline = [dict(type='LoadVolumeFromFile'), hu_window, dict(type='PackVolumeInputs')]
train_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, cases=[f'volume-{i}' for i in range(100)],
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, cases=[f'volume-{i}' for i in range(100, 131)],
                 pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='VolumeMetric', hd95=True)
test_evaluator = val_evaluator
