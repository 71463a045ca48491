# MSD Task03_Liver layout (dataset.json, imagesTr/, labelsTr/, imagesTs/): CT, 0 background,
# 1 liver, 2 tumour. Liver HU window [-200, 250] -> [0, 1]; resampled to 2.5 x 0.8 x 0.8 mm
# (D, H, W); training patches with 1/3 centred on foreground, 3D flips, in-plane rot90.
# MSD has no validation split: the last 26 of the 131 training cases validate here.
dataset_type = 'MSDDataset'
data_root = 'data/Task03_Liver'
spacing = (2.5, 0.8, 0.8)
patch_size = (48, 160, 160)
val_cases = [f'liver_{i}' for i in range(105, 131)]
train_cases = [f'liver_{i}' for i in range(105)]

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
    batch_size=2, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, cases=train_cases, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, cases=val_cases, pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='VolumeMetric', hd95=True)
test_evaluator = val_evaluator
