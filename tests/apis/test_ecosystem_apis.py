"""mmseg's and mmdet's own inference APIs on densedet's configs, unchanged (random weights, one
small image): ``init_model`` + ``inference_model`` on every 2D segmentation config,
``init_detector`` + ``inference_detector`` on every detection config, and the Inferencers on one
config of each decoder kind. Each prediction calls only the mmcv ops that densedet serves without
compiled mmcv (with the training steps of tests/test_configs.py: how that list was found)."""
import glob
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from test_configs import record_mmcv_ext_calls

from densedet.apis.image_inference import model_kind
from densedet.ops.mmcv_ext import SERVED

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True) if '_base_' not in p)


KINDS = {p: model_kind(Config.fromfile(p)) for p in CONFIGS}
SEG = [p for p in CONFIGS if KINDS[p] == 'seg']
DET = [p for p in CONFIGS if KINDS[p] == 'det']
ids = [osp.relpath(p, ROOT) for p in CONFIGS]


def small(path):
    """The config as is, but its test-time Resize to ~96 px: the pipelines' composition is what
    is under test, not 2048x512 inference on CPU."""
    cfg = Config.fromfile(path)
    pipelines = [cfg.get('test_pipeline', []), cfg.test_dataloader.dataset.get('pipeline', [])]
    for pipeline in pipelines:
        for t in pipeline:
            if t.get('type') == 'Resize':
                t['scale'] = (128, 96)
    return cfg


IMAGE = np.random.RandomState(0).randint(0, 255, (72, 96, 3), np.uint8)


def confident(detector):
    """Random weights score no box above mmdet's threshold: the classifier of every RoI head stage
    (CenterNet: its heatmap) made to say class 0, confidently, whatever the features (zero weights, a
    large bias), so the predictions hold boxes to check."""
    import torch
    if not hasattr(detector, 'roi_head'):
        classifiers = [detector.bbox_head.heatmap_head[-1]]
    else:
        heads = detector.roi_head.bbox_head
        classifiers = [h.fc_cls for h in (heads if isinstance(heads, torch.nn.ModuleList) else [heads])]
    for layer in classifiers:
        layer.weight.data.zero_()
        layer.bias.data[0] = 10.0
    return detector


@pytest.mark.parametrize('path', SEG, ids=[osp.relpath(p, ROOT) for p in SEG])
def test_mmseg_init_model_and_inference_model(path):
    from mmseg.apis import inference_model, init_model
    model = init_model(small(path), device='cpu')
    with record_mmcv_ext_calls() as called:
        result = inference_model(model, IMAGE)
    assert called <= set(SERVED), sorted(called - set(SERVED))
    assert result.pred_sem_seg.shape == IMAGE.shape[:2]
    assert int(result.pred_sem_seg.data.max()) < model.decode_head.num_classes


@pytest.mark.parametrize('path', DET, ids=[osp.relpath(p, ROOT) for p in DET])
def test_mmdet_init_detector_and_inference_detector(path):
    import torch
    from mmdet.apis import inference_detector, init_detector
    torch.manual_seed(0)  # random weights: whether another class also scores > 0.5 must not depend on test order
    model = confident(init_detector(small(path), device='cpu'))
    with record_mmcv_ext_calls() as called:
        result = inference_detector(model, IMAGE)
    two_stage = hasattr(model, 'roi_head')
    assert ({'roi_align_forward', 'nms'} if two_stage else set()) <= called <= set(SERVED), sorted(called)
    pred = result.pred_instances
    assert len(pred) > 0 and pred.bboxes.shape[1] == 4 and len(pred.scores) == len(pred.labels)
    assert (pred.labels == 0).all() and (pred.scores > 0.5).all()
    if two_stage:  # the Mask R-CNNs; CenterNet predicts boxes only
        assert pred.masks.shape[1:] == IMAGE.shape[:2]


@pytest.mark.parametrize('name', ['upernet_rdnet_ade20k.py', 'fcdensenet103_camvid.py', 'unetpp/unetpp_drive.py'])
def test_mmseg_inferencer(name):
    from mmseg.apis import MMSegInferencer
    out = MMSegInferencer(model=small(osp.join(ROOT, 'configs', name)), device='cpu')(IMAGE, return_datasamples=True)
    assert out.pred_sem_seg.shape == IMAGE.shape[:2]


def test_mmdet_inferencer():
    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(model=small(osp.join(ROOT, 'configs', 'demo', 'mask-rcnn_rdnet_coco_demo.py')),
                               device='cpu', show_progress=False)
    confident(inferencer.model)
    pred = inferencer(IMAGE, return_datasamples=True)['predictions'][0].pred_instances
    assert len(pred) > 0 and pred.bboxes.shape[1] == 4
