# `make demo-3d`: the 3D demo on the nnU-Net-class data path. Plan (tools/data/plan_volumes.py:
# target spacing, CT normalisation from the foreground statistics, 5 folds), preprocess once
# (tools/data/preprocess_volumes.py: crop to the non-zero box, normalise, resample, store as .npy),
# train on memory-mapped patches of fold 0, validate / test on the original NIfTI files with the
# same normalisation and spacing (metrics and written predictions on the files' own grid).
_base_ = ['./denseunet3d_msd-liver_demo.py']

raw_root = 'data/msd_demo/Task03_Liver'
preprocessed_root = 'data/msd_demo/Task03_Liver_preprocessed'
plans_file = preprocessed_root + '/plans.json'
splits_file = preprocessed_root + '/splits.json'
fold = 0
# Hand-written: the plans' patch size fits a GPU's memory (preprocess.memory_gb); the demo trains
# on 2 CPU cores in minutes. 48 voxels in plane at the plans' ~1 mm: about the 48 mm of the
# hand-written demo's 32 voxels at 1.5 mm (with 32 here, seed 0 ended at tumour Dice 16 %).
patch_size = (16, 48, 48)

preprocess = dict(
    dataset=dict(type='MSDDataset', data_root=raw_root),
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
    dict(type='LoadPreprocessedPatch', patch_size=patch_size, fg_ratio=1 / 3),
    dict(type='RandomFlip3D', prob=0.5, axes=(0, 1, 2)),
    dict(type='RandomRot90', prob=0.5, axes=(1, 2)),
    dict(type='PackVolumeInputs'),
]
test_pipeline = [
    dict(type='LoadVolumeFromFile'),
    dict(type='NormalizeFromPlans', plans_file=plans_file),
    dict(type='ResampleSpacing', plans_file=plans_file),
    dict(type='PackVolumeInputs'),
]
train_dataloader = dict(
    dataset=dict(_delete_=True, type='PreprocessedVolumeDataset', data_root=preprocessed_root,
                 splits_file=splits_file, fold=fold, pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='MSDDataset', data_root=raw_root, splits_file=splits_file, fold=fold,
                 fold_part='val', pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
model = dict(test_cfg=dict(roi_size=patch_size))
# seeded: weights, the sampler's order and the patch / augmentation draws of the data workers
randomness = dict(seed=0)
