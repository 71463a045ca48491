# H-DenseUNet (Li et al., TMI 2018; official Keras code xmengli/H-DenseUNet):
# 2D DenseUNet-167 = DenseNet-161 encoder (blocks 6/12/36/24, growth 48, 96 stem filters,
# torchvision's densenet161 weights load into it) + 5 upsampling stages 768/384/96/96/64;
# 3D DenseUNet-65 = DenseNet blocks 3/4/12/8, growth 32, 96 stem filters, transitions that
# keep the depth, stages 504/224/192/96/64; HFF on the two 64-channel feature volumes.
# Total stride (4, 32, 32) in (D, H, W).
num_classes = 3
model = dict(
    type='HDenseUNet',
    num_classes=num_classes,
    stage='hybrid',
    context_slices=1,
    score_scale=1.0,
    lambda_2d=0.5,
    hff_dropout=0.3,
    data_preprocessor=dict(type='VolumeDataPreProcessor', size_divisor=(4, 32, 32)),
    encoder2d=dict(type='DenseNet', arch='161', in_channels=3, stem_output=True, out_indices=(0, 1, 2, 3, 4)),
    decoder2d=dict(
        type='DenseUNetHead', in_channels=[96, 384, 768, 2112, 2208], up_channels=(768, 384, 96, 96, 64),
        last_dropout=0.3, num_classes=num_classes),
    encoder3d=dict(
        type='DenseNet',
        arch=dict(growth_rate=32, block_config=(3, 4, 12, 8), stem_channels=96),
        in_channels=1 + num_classes,
        spatial_dims=3,
        transition_pool_size=(1, 2, 2),
        stem_output=True,
        out_indices=(0, 1, 2, 3, 4)),
    decoder3d=dict(
        type='DenseUNetHead', in_channels=[96, 192, 224, 496, 504], up_channels=(504, 224, 192, 96, 64),
        scale_factors=[(1, 2, 2)] * 3 + [(2, 2, 2)] * 2, spatial_dims=3, num_classes=num_classes),
    # the official weighted cross-entropy (background, liver, tumour)
    losses=[dict(type='VoxelWeightedCrossEntropyLoss', class_weight=[0.78, 0.65, 8.57])],
    test_cfg=dict(roi_size=(12, 224, 224), overlap=0.5, sw_batch_size=1, blend='gaussian'))
