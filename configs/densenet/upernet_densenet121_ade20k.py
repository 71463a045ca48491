# UperNet + DenseNet-121 on ADE20K (mmseg's UperNet recipe for CNN backbones: SGD, 160k, 512x512).
# ImageNet weights: backbone.init_cfg=dict(type='Pretrained', checkpoint='densenet121-a639ec97.pth')
# (torchvision's file, loads as is).
_base_ = ['../_base_/upernet_cnn_160k_ade20k.py']
model = dict(
    backbone=dict(_delete_=True, type='DenseNet', arch='121', out_indices=(0, 1, 2, 3), norm_eval=False,
                  norm_cfg=dict(type='SyncBN', requires_grad=True)),
    decode_head=dict(in_channels=[256, 512, 1024, 1024]),
    auxiliary_head=dict(in_channels=1024))
