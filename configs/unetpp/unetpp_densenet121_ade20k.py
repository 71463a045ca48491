# UNet++ decoder on a dense backbone: densedet's DenseNet-121 (strides 4-32, 1x1-projected to
# 64/128/256/512 node channels, L = 3, three deep-supervision heads) on ADE20K with the
# densedet ADE20K pipeline and mmseg's 160k SGD schedule, as the other CNN UperNet configs.
_base_ = ['../_base_/upernet_cnn_160k_ade20k.py']
model = dict(
    backbone=dict(_delete_=True, type='DenseNet', arch='121', out_indices=(0, 1, 2, 3),
                  norm_cfg=dict(type='SyncBN', requires_grad=True)),
    decode_head=dict(
        _delete_=True,
        type='UNetPlusPlusHead',
        in_channels=[256, 512, 1024, 1024],
        node_channels=[64, 128, 256, 512],
        deep_supervision=True,
        mode='accurate',
        num_classes=150,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=None)
