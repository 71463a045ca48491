# 3D DenseUNet baseline: H-DenseUNet's 3D branch (DenseNet 3/4/12/8, growth 32, 96 stem
# filters; transitions keep the depth; decoder 504/224/192/96/64 with additive skips) as a
# stand-alone volume segmentor. Total stride (4, 32, 32) in (D, H, W).
norm_cfg = dict(type='BN3d', requires_grad=True)
model = dict(
    type='VolumeEncoderDecoder',
    data_preprocessor=dict(type='VolumeDataPreProcessor', size_divisor=(4, 32, 32)),
    backbone=dict(
        type='DenseNet',
        arch=dict(growth_rate=32, block_config=(3, 4, 12, 8), stem_channels=96),
        in_channels=1,
        spatial_dims=3,
        transition_pool_size=(1, 2, 2),
        stem_output=True,
        out_indices=(0, 1, 2, 3, 4),
        norm_cfg=norm_cfg),
    decode_head=dict(
        type='DenseUNetHead',
        in_channels=[96, 192, 224, 496, 504],
        up_channels=(504, 224, 192, 96, 64),
        scale_factors=[(1, 2, 2)] * 3 + [(2, 2, 2)] * 2,
        spatial_dims=3,
        num_classes=3,
        norm_cfg=norm_cfg),
    losses=[dict(type='CrossEntropyLoss', loss_weight=1.0), dict(type='SoftDiceLoss', loss_weight=1.0)],
    test_cfg=dict(roi_size=(48, 160, 160), overlap=0.5, sw_batch_size=2, blend='gaussian', flip_axes=None))
