# UperNet + DenseNet-121 on ADE20K (mmseg's UperNet recipe for CNN backbones: SGD, 160k, 512x512).
# ImageNet weights: backbone.init_cfg=dict(type='Pretrained', checkpoint='densenet121-a639ec97.pth')
# (torchvision's file, loads as is).
_base_ = [
    '../_base_/models/upernet_rdnet.py', '../_base_/datasets/ade20k.py', '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py'
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(_delete_=True, type='DenseNet', arch='121', out_indices=(0, 1, 2, 3), norm_eval=False,
                  norm_cfg=dict(type='SyncBN', requires_grad=True)),
    decode_head=dict(in_channels=[256, 512, 1024, 1024], num_classes=150),
    auxiliary_head=dict(in_channels=1024, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
