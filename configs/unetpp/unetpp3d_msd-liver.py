# UNet++ in 3D on MSD Task03_Liver: the 2D decoder of configs/unetpp (UNetPlusPlusHead) and
# the paper's plain encoder, both with spatial_dims=3, deep supervision on the four heads.
_base_ = ['../_base_/datasets/msd_liver.py', '../_base_/schedules/volume_sgd_poly.py', '../_base_/volume_runtime.py']
channels = (32, 64, 128, 256, 512)
norm_cfg = dict(type='BN3d', requires_grad=True)
patch_size = (64, 128, 128)
model = dict(
    type='VolumeEncoderDecoder',
    data_preprocessor=dict(type='VolumeDataPreProcessor', size_divisor=16),
    backbone=dict(type='UNetEncoder', in_channels=1, channels=channels, spatial_dims=3, norm_cfg=norm_cfg),
    decode_head=dict(
        type='UNetPlusPlusHead', in_channels=channels, num_classes=3, spatial_dims=3, deep_supervision=True,
        mode='accurate', norm_cfg=norm_cfg),
    losses=[dict(type='CrossEntropyLoss', loss_weight=1.0), dict(type='SoftDiceLoss', loss_weight=1.0)],
    test_cfg=dict(roi_size=patch_size, overlap=0.5, sw_batch_size=2, flip_axes=[[3], [4], [3, 4]]))
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadVolumeFromFile'),
    dict(type='IntensityWindow', window=(-200, 250), out_range=(0, 1)),
    dict(type='ResampleSpacing', spacing={{_base_.spacing}}),
    dict(type='RandomPatchCrop', patch_size=patch_size, fg_ratio=1 / 3),
    dict(type='RandomFlip3D', prob=0.5, axes=(0, 1, 2)),
    dict(type='RandomRot90', prob=0.5, axes=(1, 2)),
    dict(type='PackVolumeInputs'),
]))
