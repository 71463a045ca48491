# UNet++ in 3D: the 2D decoder of configs/unetpp (UNetPlusPlusHead) and the paper's plain
# encoder, both with spatial_dims=3, deep supervision on the four heads; windows of 64x128x128.
channels = (32, 64, 128, 256, 512)
norm_cfg = dict(type='BN3d', requires_grad=True)
model = dict(
    type='VolumeEncoderDecoder',
    data_preprocessor=dict(type='VolumeDataPreProcessor', size_divisor=16),
    backbone=dict(type='UNetEncoder', in_channels=1, channels=channels, spatial_dims=3, norm_cfg=norm_cfg),
    decode_head=dict(
        type='UNetPlusPlusHead', in_channels=channels, num_classes=3, spatial_dims=3, deep_supervision=True,
        mode='accurate', norm_cfg=norm_cfg),
    losses=[dict(type='CrossEntropyLoss', loss_weight=1.0), dict(type='SoftDiceLoss', loss_weight=1.0)],
    test_cfg=dict(roi_size=(64, 128, 128), overlap=0.5, sw_batch_size=2, flip_axes=[[3], [4], [3, 4]]))
