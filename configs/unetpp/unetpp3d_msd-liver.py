# UNet++ in 3D (configs/_base_/models/unetpp3d.py) on MSD Task03_Liver, 64x128x128 patches.
_base_ = [
    '../_base_/models/unetpp3d.py', '../_base_/datasets/msd_liver.py', '../_base_/schedules/volume_sgd_poly.py',
    '../_base_/volume_runtime.py'
]
patch_size = (64, 128, 128)
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadVolumeFromFile'),
    dict(type='IntensityWindow', window=(-200, 250), out_range=(0, 1)),
    dict(type='ResampleSpacing', spacing={{_base_.spacing}}),
    dict(type='RandomPatchCrop', patch_size=patch_size, fg_ratio=1 / 3),
    dict(type='RandomFlip3D', prob=0.5, axes=(0, 1, 2)),
    dict(type='RandomRot90', prob=0.5, axes=(1, 2)),
    dict(type='PackVolumeInputs'),
]))
