# FC-DenseNet103 (Tiramisu) on CamVid, the paper's recipe (Jégou et al. 2017; official
# SimJeg/FC-DenseNet config): RMSprop lr 1e-3, lr x0.995 after every epoch, weight decay 1e-4
# on the conv weights only (Lasagne's L2 penalty on regularizable params; it adds 1e-4 * |w|^2 to
# the loss, i.e. a 2e-4 decay in torch's convention), dropout 0.2, random 224x224 crops + flips,
# batch 5, up to 750 epochs with early stopping on validation mIoU (patience 100). Then fine-tune
# at full resolution: configs/fcdensenet/fcdensenet103_camvid-ft.py.
# Paper (Table 2): 66.9 mIoU, 91.5 global accuracy on the CamVid test set.
_base_ = ['_base_/datasets/camvid.py', '_base_/default_runtime.py']
custom_imports = dict(imports=['densedet'], allow_failed_imports=False)
crop_size = (224, 224)
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=crop_size)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='FCDenseNet', arch='103', drop_rate=0.2),
    decode_head=dict(
        type='FCDenseNetHead',
        in_channels=[112, 192, 304, 464, 656, 240],  # the five skips and the bottleneck's new maps
        up_layers=(12, 10, 7, 5, 4),
        growth=16,
        drop_rate=0.2,
        num_classes=11,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='RMSprop', lr=1e-3, alpha=0.9, eps=1e-6, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
max_epochs = 750
param_scheduler = [dict(type='ExponentialLR', gamma=0.995, by_epoch=True, begin=0, end=max_epochs)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=True),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=10, max_keep_ckpts=2, save_best='mIoU',
                    rule='greater'))
custom_hooks = [dict(type='EarlyStoppingHook', monitor='mIoU', rule='greater', patience=100)]
