# configs/unetpp/unetpp3d_msd-liver.py on the preprocessed data path: plan and preprocess once
# (configs/_base_/datasets/msd_liver_preprocessed.py says how), then train as usual.
_base_ = [
    '../_base_/models/unetpp3d.py', '../_base_/datasets/msd_liver_preprocessed.py',
    '../_base_/schedules/volume_sgd_poly.py', '../_base_/volume_runtime.py'
]
patch_size = (64, 128, 128)
load_size = (143, 208, 208)  # spatial_input_size(patch_size, (30, 30, 30), 0.85): see the base config
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadPreprocessedPatch', patch_size=load_size, fg_ratio=1 / 3),
    dict(type='RandomSpatial3D', patch_size=patch_size, rotation=(30, 30, 30), p_rotation=0.2, scale=(0.7, 1.4),
         p_scale=0.2),
    dict(type='RandomGaussianNoise', prob=0.1, variance=(0, 0.1)),
    dict(type='RandomGaussianBlur', prob=0.2, sigma=(0.5, 1.0), prob_per_channel=0.5),
    dict(type='RandomBrightness', prob=0.15, multiplier=(0.75, 1.25)),
    dict(type='RandomContrast', prob=0.15, factor=(0.75, 1.25)),
    dict(type='RandomLowResolution', prob=0.25, zoom=(0.5, 1.0), prob_per_channel=0.5),
    dict(type='RandomGamma', prob=0.1, gamma=(0.7, 1.5), invert=True),
    dict(type='RandomGamma', prob=0.3, gamma=(0.7, 1.5)),
    dict(type='RandomFlip3D', prob=0.5, axes=(0, 1, 2)),
    dict(type='PackVolumeInputs'),
]))
