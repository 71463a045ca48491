# mmdet's own Mask R-CNN + FPN, COCO instance data, 1x schedule and CocoMetric (bbox + segm),
# unchanged. Family configs replace the backbone and the FPN input channels.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', 'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['densedet'], allow_failed_imports=False)
