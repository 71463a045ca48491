# UperNet + HarDNet-68 on ADE20K (mmseg's UperNet recipe for CNN backbones: SGD, 160k, 512x512).
# ImageNet weights: backbone.init_cfg=dict(type='Pretrained', checkpoint='hardnet68.pth') (official file).
_base_ = [
    '../_base_/models/upernet_rdnet.py', '../_base_/datasets/ade20k.py', '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py'
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(_delete_=True, type='HarDNet', arch='68', out_indices=(0, 1, 2, 3),
                  norm_cfg=dict(type='SyncBN', requires_grad=True)),
    decode_head=dict(in_channels=[128, 320, 640, 1024], num_classes=150),
    auxiliary_head=dict(in_channels=640, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
