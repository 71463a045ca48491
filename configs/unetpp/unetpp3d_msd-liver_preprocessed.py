# configs/unetpp/unetpp3d_msd-liver.py on the preprocessed data path: plan and preprocess once
# (configs/_base_/datasets/msd_liver_preprocessed.py says how), then train as usual.
_base_ = [
    '../_base_/models/unetpp3d.py', '../_base_/datasets/msd_liver_preprocessed.py',
    '../_base_/schedules/volume_sgd_poly.py', '../_base_/volume_runtime.py'
]
patch_size = (64, 128, 128)
load_size = (143, 208, 208)  # spatial_input_size(patch_size, (30, 30, 30), 0.85): see the base config
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadPreprocessedPatch', patch_size=load_size, crop_size=patch_size, fg_ratio=1 / 3),
    dict(type='NnUNetAugmentation', patch_size=patch_size),  # nnU-Net v2's: rotation, zoom, intensity, mirror
    dict(type='PackVolumeInputs'),
]))
