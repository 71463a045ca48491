# mmdet's Cascade Mask R-CNN + FPN with the official RDNet box heads: three 4conv1fc heads with
# SyncBN and GIoU loss on decoded boxes (as mmdet's ConvNeXt cascade recipe), GN(1, C) on the
# backbone outputs, SyncBN in the FPN.
_base_ = ['mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py']
custom_imports = dict(imports=['densedet'], allow_failed_imports=False)
head_norm_cfg = dict(type='SyncBN', requires_grad=True)


def _box_head(stds):
    return dict(
        type='ConvFCBBoxHead', num_shared_convs=4, num_shared_fcs=1, in_channels=256, conv_out_channels=256,
        fc_out_channels=1024, roi_feat_size=7, num_classes=80,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=stds),
        reg_class_agnostic=False, reg_decoded_bbox=True, norm_cfg=head_norm_cfg,
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=10.0))


model = dict(
    backbone=dict(
        _delete_=True,
        type='RDNet',
        arch='tiny',
        drop_path_rate=0.4,
        out_norm_cfg=dict(type='GN', num_groups=1),
        init_cfg=None),
    neck=dict(in_channels=[256, 440, 744, 1040], norm_cfg=dict(type='SyncBN', requires_grad=True)),
    roi_head=dict(bbox_head=[
        _box_head([0.1, 0.1, 0.2, 0.2]),
        _box_head([0.05, 0.05, 0.1, 0.1]),
        _box_head([0.033, 0.033, 0.067, 0.067]),
    ]))
