# MSD Task03_Liver on the preprocessed data path (densedet/preparation/, densedet/datasets/preprocessed.py):
#   python tools/data/plan_volumes.py CONFIG        # plans.json (spacing, CT normalisation) + splits.json
#   python tools/data/preprocess_volumes.py CONFIG --workers 8
# Training reads memory-mapped patches of fold `fold` (1/3 centred on foreground) with nnU-Net v2's
# augmentation (densedet/transforms/volume_augmentation.py: rotation / scaling drawn on a larger
# region and cropped, noise, blur, brightness, contrast, low resolution, gamma, mirroring);
# validation and test read the original NIfTI files with the plans' normalisation and spacing, so
# metrics and written predictions are on the files' own grid. The plans' patch size (printed by
# plan_volumes.py, fitted to preprocess.memory_gb) can replace `patch_size` and the model's roi_size.
dataset_type = 'MSDDataset'
data_root = 'data/Task03_Liver'
preprocessed_root = 'data/Task03_Liver_preprocessed'
plans_file = preprocessed_root + '/plans.json'
splits_file = preprocessed_root + '/splits.json'
fold = 0
patch_size = (48, 160, 160)
# the region RandomSpatial3D rotates (up to 30 degrees per axis) and zooms out of:
# densedet.transforms.spatial_input_size(patch_size, (30, 30, 30), 0.85), nnU-Net's rule (zooms
# below 0.85 and rotations about several axes at once see some padding at the patch corners,
# labelled ignore)
load_size = (146, 260, 260)

preprocess = dict(
    dataset=dict(type=dataset_type, data_root=data_root),
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
    batch_size=2, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='PreprocessedVolumeDataset', data_root=preprocessed_root, splits_file=splits_file, fold=fold,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, splits_file=splits_file, fold=fold, fold_part='val',
                 pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='VolumeMetric', hd95=True)
test_evaluator = val_evaluator
