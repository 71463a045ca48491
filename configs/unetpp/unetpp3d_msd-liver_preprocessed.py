# configs/unetpp/unetpp3d_msd-liver.py on the preprocessed data path: plan and preprocess once
# (configs/_base_/datasets/msd_liver_preprocessed.py says how), then train as usual.
_base_ = [
    '../_base_/models/unetpp3d.py', '../_base_/datasets/msd_liver_preprocessed.py',
    '../_base_/schedules/volume_sgd_poly.py', '../_base_/volume_runtime.py'
]
patch_size = (64, 128, 128)
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadPreprocessedPatch', patch_size=patch_size, fg_ratio=1 / 3),
    dict(type='RandomFlip3D', prob=0.5, axes=(0, 1, 2)),
    dict(type='RandomRot90', prob=0.5, axes=(1, 2)),
    dict(type='PackVolumeInputs'),
]))
