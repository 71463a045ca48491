# UNet++ (Zhou et al. 2018/2020): the paper's plain conv encoder (32/64/128/256/512) and the nested
# dense skip pathways, deep supervision on X(0,1)..X(0,4) with equal loss weights, 'accurate'
# inference (mean of the four heads). Slide inference; set crop_size / stride per dataset.
custom_imports = dict(imports=['densedet'], allow_failed_imports=False)
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         bgr_to_rgb=True, pad_val=0, seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='UNetEncoder', in_channels=3, channels=(32, 64, 128, 256, 512)),
    decode_head=dict(
        type='UNetPlusPlusHead',
        in_channels=[32, 64, 128, 256, 512],
        deep_supervision=True,
        loss_weights=[1.0, 1.0, 1.0, 1.0],
        mode='accurate',
        num_classes=2,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(42, 42)))
