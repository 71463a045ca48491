# UperNet + RDNet-T on ADE20K, the official RDNet recipe on mmseg 1.x:
# AdamW lr 8e-5, wd 0.03, stage-wise lr decay 0.9, drop path 0.1, 1500-iter warm-up then poly,
# 160k iterations, 512x512 crops, 16 images per iteration (8 GPUs x 2), slide inference.
# Paper (Kim et al. 2024, Table 6): 47.6 mIoU single-scale, 48.6 multi-scale.
_base_ = [
    '_base_/models/upernet_rdnet.py', '_base_/datasets/ade20k.py', '_base_/default_runtime.py',
    '_base_/schedules/schedule_160k_adamw_layer_decay.py'
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(arch='tiny', drop_path_rate=0.1),
    decode_head=dict(in_channels=[256, 440, 744, 1040], num_classes=150),
    auxiliary_head=dict(in_channels=744, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
optim_wrapper = dict(optimizer=dict(lr=8e-5, weight_decay=0.03), paramwise_cfg=dict(decay_rate=0.9))
# Scale the lr with the total batch when training on another number of GPUs.
auto_scale_lr = dict(enable=False, base_batch_size=16)
