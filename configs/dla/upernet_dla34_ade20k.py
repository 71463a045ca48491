# UperNet + DLA-34 on ADE20K (mmseg's UperNet recipe for CNN backbones: SGD, 160k, 512x512).
# ImageNet weights: backbone.init_cfg=dict(type='Pretrained', checkpoint=<timm dla34 checkpoint>).
_base_ = ['../_base_/upernet_cnn_160k_ade20k.py']
model = dict(
    backbone=dict(_delete_=True, type='DLA', arch='34', out_indices=(0, 1, 2, 3),
                  norm_cfg=dict(type='SyncBN', requires_grad=True)),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
