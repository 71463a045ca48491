# FC-HarDNet-70 (PingoLH/FCHarDNet): the HarDNet 'fc70' encoder and FCHarDNetHead. 4.1 M parameters and
# 35.4 GMACs at 1024x2048 with 19 classes, as the official network (tests/models/decode_heads/test_fc_hardnet.py).
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         bgr_to_rgb=True, pad_val=0, seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='HarDNet', arch='fc70', out_indices=(0, 1, 2, 3, 4), norm_cfg=norm_cfg),
    decode_head=dict(
        type='FCHarDNetHead',
        in_channels=[48, 78, 160, 214, 320],
        growth=(10, 16, 18, 24),
        num_layers=(4, 4, 8, 8),
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=True,
        # the official bootstrapped cross-entropy: pixels whose loss exceeds 0.3 (ground-truth probability
        # below exp(-0.3) = 0.74), at least 4096 per image
        sampler=dict(type='OHEMPixelSampler', thresh=0.74, min_kept=4096),
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
