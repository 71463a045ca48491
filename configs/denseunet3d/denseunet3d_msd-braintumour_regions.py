# 3D DenseUNet on MSD Task01_BrainTumour as nnU-Net v2 trains BraTS: three overlapping regions
# (whole tumour = edema + non-enhancing + enhancing, tumour core = non-enhancing + enhancing,
# enhancing tumour), one sigmoid output each, sigmoid cross-entropy + soft Dice per region; the
# regions are painted back in `regions_class_order` (1, 2, 3) to write label files, and scored as
# regions (region Dice / HD95). Four MR channels (FLAIR, T1w, T1gd, T2w), z-scored per case.
#   python tools/data/plan_volumes.py configs/denseunet3d/denseunet3d_msd-braintumour_regions.py
#   python tools/data/preprocess_volumes.py configs/denseunet3d/denseunet3d_msd-braintumour_regions.py --workers 8
#   python tools/crossval.py configs/denseunet3d/denseunet3d_msd-braintumour_regions.py
_base_ = ['../_base_/models/denseunet3d.py', '../_base_/schedules/volume_sgd_poly.py', '../_base_/volume_runtime.py']

data_root = 'data/Task01_BrainTumour'
preprocessed_root = 'data/Task01_BrainTumour_preprocessed'
plans_file = preprocessed_root + '/plans.json'
splits_file = preprocessed_root + '/splits.json'
fold = 0
# label values of the MSD dataset.json: 1 edema, 2 non-enhancing tumour, 3 enhancing tumour
regions = {'whole tumour': [1, 2, 3], 'tumour core': [2, 3], 'enhancing tumour': [3]}
regions_class_order = [1, 2, 3]
patch_size = (128, 128, 128)  # nnU-Net's BraTS patch
load_size = (208, 208, 208)  # densedet.transforms.spatial_input_size(patch_size, (30, 30, 30), 0.85)
raw_dataset = dict(type='MSDDataset', data_root=data_root, regions=regions, regions_class_order=regions_class_order)

preprocess = dict(
    dataset=raw_dataset,
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
    dataset=dict(raw_dataset, splits_file=splits_file, fold=fold, fold_part='val', pipeline=test_pipeline,
                 test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='VolumeMetric', hd95=True)
test_evaluator = val_evaluator

model = dict(
    data_preprocessor=dict(size_divisor=(4, 32, 32)),
    backbone=dict(in_channels=4),
    decode_head=dict(num_classes=3),  # one output per region
    losses=[dict(type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True, loss_weight=1.0),
            dict(type='SoftDiceLoss', loss_weight=1.0)],
    test_cfg=dict(roi_size=patch_size, overlap=0.5, flip_axes=[[2], [3], [4]]))
