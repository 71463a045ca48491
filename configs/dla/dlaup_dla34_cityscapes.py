# DLA-Up (iterative deep aggregation up to stride 2) with DLA-34 on Cityscapes, the official recipe
# (ucbdrive/dla README, `segment.py train -c 19 -s 832 --arch dla34up --batch-size 16 --lr 0.01 --momentum 0.9
# --lr-mode poly --epochs 500 --random-scale 2 --random-rotate 10 --random-color --pretrained-base imagenet`):
# 832x832 crops of images rescaled by 0.5-2.0 and rotated by up to 10 degrees, flips, colour jitter (mmseg's
# PhotoMetricDistortion stands in for the official brightness / contrast / saturation + PCA lighting), batch 16
# (8 GPUs x 2), SGD lr 0.01 / momentum 0.9 / weight decay 1e-4 (segment.py's default), poly decay over
# 500 epochs of the 2975 training images = 93k iterations, SyncBN. 17.54 M parameters at 19 classes (the
# official dla34up's, less its unused ImageNet classifier, never-called projections and fixed upsampler:
# tests/models/decode_heads/test_dla_up.py). ImageNet weights for the backbone:
# backbone.init_cfg=dict(type='Pretrained', checkpoint=<timm or official dla34 checkpoint>).
_base_ = ['mmseg::_base_/datasets/cityscapes.py', '../_base_/default_runtime.py',
          'mmseg::_base_/schedules/schedule_80k.py']
custom_imports = dict(imports=['densedet'], allow_failed_imports=False)
crop_size = (832, 832)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=crop_size),
    backbone=dict(type='DLA', arch='34', stem_output=True, out_indices=(0, 1, 2, 3, 4), norm_cfg=norm_cfg),
    decode_head=dict(
        type='DLAUpHead',
        in_channels=[32, 64, 128, 256, 512],
        num_classes=19,
        norm_cfg=norm_cfg,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomRotate', prob=1.0, degree=10, pad_val=0, seg_pad_val=255),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=4, dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(weight_decay=1e-4))  # lr 0.01, momentum 0.9: the base's
max_iters = 93000
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=5000)
default_hooks = dict(checkpoint=dict(interval=5000, max_keep_ckpts=2, save_best='mIoU'))
