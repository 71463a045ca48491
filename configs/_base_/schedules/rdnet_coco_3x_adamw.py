# The official RDNet COCO schedule (naver-ai/rdnet detection/, mmdet 2.x) on mmdet 3.x:
# AdamW with stage-wise lr decay, 3x schedule (36 epochs, lr x0.1 at epochs 27 and 33),
# 16 images per iteration (8 GPUs x 2). The official runs used fp16: add `--amp` to tools/train.py.
max_epochs = 36
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
warmup_iters = 1500
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33], gamma=0.1),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='DenseLayerDecayConstructor',
    paramwise_cfg=dict(decay_rate=0.95, decay_type='stage_wise'))
auto_scale_lr = dict(enable=False, base_batch_size=16)
