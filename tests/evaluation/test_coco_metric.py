"""mmdet's CocoMetric (pycocotools) end to end on the embedded COCO-format data."""
import os.path as osp

import torch
from mmengine.registry import init_default_scope

from densedet.datasets import CheckedCocoDataset

CLASSES = ('disc', 'box', 'triangle')


def _evaluate(coco_demo, shift=0.0, drop_masks=False):
    from mmdet.evaluation import CocoMetric
    init_default_scope('mmdet')
    ds = CheckedCocoDataset(data_root=coco_demo, ann_file='annotations/instances_val2017.json',
                            data_prefix=dict(img='val2017/'), metainfo=dict(classes=CLASSES), test_mode=True,
                            pipeline=[dict(type='LoadImageFromFile'),
                                      dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                                      dict(type='PackDetInputs')])
    metric = CocoMetric(ann_file=osp.join(coco_demo, 'annotations', 'instances_val2017.json'),
                        metric=['bbox', 'segm'])
    metric.dataset_meta = ds.metainfo
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        gt = sample.gt_instances
        masks = torch.from_numpy(gt.masks.masks).bool()
        if drop_masks:
            masks = torch.zeros_like(masks)
        bboxes = gt.bboxes.tensor.clone()
        bboxes[:, [0, 2]] += shift * (bboxes[:, 2] - bboxes[:, 0])[:, None]
        pred = dict(bboxes=bboxes, scores=torch.ones(len(bboxes)), labels=gt.labels, masks=masks)
        metric.process({}, [dict(pred_instances=pred, img_id=sample.img_id, ori_shape=sample.ori_shape)])
    return metric.evaluate(len(ds))


def test_ground_truth_as_prediction_scores_one(coco_demo):
    res = _evaluate(coco_demo)
    assert res['coco/bbox_mAP'] == 1.0 and res['coco/segm_mAP'] == 1.0


def test_wrong_predictions_score_lower(coco_demo):
    res = _evaluate(coco_demo, shift=0.6, drop_masks=True)
    assert res['coco/bbox_mAP'] < 0.2 and res['coco/bbox_mAP_50'] < 0.2
    assert res['coco/segm_mAP'] == 0.0
