"""Cases for comparing mmcv's ops served by torchvision (densedet/ops/mmcv_ext.py) with mmcv's
compiled ops, and the recorder of the compiled reference.

The inputs are generated from seeds here; ``compute()`` runs every case through whatever serves
``mmcv._ext`` in this process. Recorded once with compiled mmcv (not in CI: compiling takes 15
minutes), in an environment made by ``VENV=/tmp/mmcv-compiled MMCV_OPS=compiled bash tools/setup_env.sh``::

    /tmp/mmcv-compiled/bin/python tests/ops/mmcv_ops_reference.py --out tests/ops/data/mmcv_ops_reference.pt

``tests/ops/test_mmcv_ext.py`` computes the same cases with the torchvision ops and compares.
"""
import argparse
import os
import os.path as osp
import sys

import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
REFERENCE = osp.join(osp.dirname(osp.abspath(__file__)), 'data', 'mmcv_ops_reference.pt')
DETECTOR_CONFIG = 'configs/demo/mask-rcnn_rdnet_coco_demo.py'

# (output_size, spatial_scale, sampling_ratio, aligned): the FPN levels' scales, mmdet's
# sampling_ratio=0 (adaptive) and fixed ones, both alignments, mask-target style 28x28 at scale 1.
ROI_ALIGN_CASES = [
    (7, 1 / 4, 0, True), (7, 1 / 8, 0, True), (7, 1 / 16, 2, True), (7, 1 / 32, 0, True),
    (14, 1 / 4, 0, True), ((3, 5), 1 / 4, 2, False), (7, 1 / 8, 0, False), (28, 1.0, 0, True),
    (7, 1 / 4, 1, False),
]


def _roi_align_inputs(gen):
    feats = torch.randn(2, 3, 24, 20, generator=gen)
    # Boxes in image pixels (image 80x96 at scale 1/4): inside, partly outside, tiny, degenerate.
    xy1 = torch.rand(24, 2, generator=gen) * torch.tensor([90., 110.]) - 10
    wh = torch.rand(24, 2, generator=gen) * 60 + 0.5
    boxes = torch.cat([xy1, xy1 + wh], 1)
    boxes[0] = torch.tensor([10., 10., 10., 10.])  # zero-size
    boxes[1] = torch.tensor([-30., -30., -5., -5.])  # outside
    idx = (torch.arange(24) % 2).float()[:, None]
    return feats, torch.cat([idx, boxes], 1)


def roi_align_cases():
    from mmcv.ops import roi_align
    gen = torch.Generator().manual_seed(0)
    feats, rois = _roi_align_inputs(gen)
    results = []
    for output_size, scale, ratio, aligned in ROI_ALIGN_CASES:
        scaled_rois = rois.clone()
        if scale == 1.0:  # mask targets: boxes on a 24x20 "mask", one channel
            scaled_rois[:, 1:] = rois[:, 1:] / 4
        x = feats.clone().requires_grad_(True)
        out = roi_align(x, scaled_rois, output_size, scale, ratio, 'avg', aligned)
        grad_out = torch.randn(out.shape, generator=gen)
        out.backward(grad_out)
        results.append(dict(out=out.detach(), grad=x.grad))
    empty = feats.clone().requires_grad_(True)
    out = roi_align(empty, rois[:0], 7, 0.25, 0, 'avg', True)
    out.sum().backward()
    results.append(dict(out=out.detach(), grad=empty.grad))
    return results


def _nms_inputs(gen, n=300):
    xy = torch.rand(n, 2, generator=gen) * 100
    wh = torch.rand(n, 2, generator=gen) * 40 + 1
    boxes = torch.cat([xy, xy + wh], 1)
    # Ties: scores on a coarse grid, so many boxes share a score.
    scores = torch.randint(0, 20, (n,), generator=gen).float() / 20
    boxes[n // 2:n // 2 + 20] = boxes[:20]  # duplicated boxes with other scores
    idxs = torch.randint(0, 4, (n,), generator=gen)
    return boxes, scores, idxs


def nms_cases():
    from mmcv.ops import batched_nms, nms, soft_nms
    gen = torch.Generator().manual_seed(1)
    boxes, scores, idxs = _nms_inputs(gen)
    results = []
    for iou, offset, score_thr, max_num in [(0.5, 0, 0, -1), (0.7, 0, 0, -1), (0.3, 1, 0, -1), (0.5, 0, 0.3, 25),
                                            (0.6, 1, 0.1, 10)]:
        dets, keep = nms(boxes, scores, iou, offset=offset, score_threshold=score_thr, max_num=max_num)
        results.append(dict(dets=dets, keep=keep))
    dets, keep = nms(boxes[:0], scores[:0], 0.5)
    results.append(dict(dets=dets, keep=keep))
    for cfg in [dict(type='nms', iou_threshold=0.5), dict(type='nms', iou_threshold=0.6, class_agnostic=True),
                dict(type='nms', iou_threshold=0.5, split_thr=100), dict(type='nms', iou_threshold=0.7, max_num=40),
                dict(type='soft_nms', iou_threshold=0.5, min_score=0.05)]:
        dets, keep = batched_nms(boxes, scores, idxs, cfg)
        results.append(dict(dets=dets, keep=keep))
    for method, iou, sigma, min_score, offset in [('linear', 0.3, 0.5, 1e-3, 0), ('gaussian', 0.3, 0.5, 1e-3, 0),
                                                  ('naive', 0.5, 0.5, 0.0, 1), ('linear', 0.5, 0.5, 0.2, 1),
                                                  ('gaussian', 0.0, 0.1, 0.1, 0)]:
        dets, keep = soft_nms(boxes, scores, iou, sigma=sigma, min_score=min_score, method=method, offset=offset)
        results.append(dict(dets=dets, keep=keep))
    # IoU exactly at the threshold (0.5 = 2 / 4): NMS keeps such a box, soft-NMS decays it.
    exact = torch.tensor([[0., 0., 2., 2.], [0., 0., 2., 1.], [0., 1., 2., 2.], [4., 4., 6., 6.]])
    exact_scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    for op, kwargs in [(nms, {}), (soft_nms, dict(method='linear')), (soft_nms, dict(method='naive'))]:
        dets, keep = op(exact, exact_scores, 0.5, **kwargs)
        results.append(dict(dets=dets, keep=keep))
    return results


def detector_case():
    """Mask R-CNN RDNet-T (the COCO demo config): one train step (losses, gradient sums) and a
    prediction, on seeded weights and a seeded batch of two 128x160 images."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.structures import InstanceData
    cfg = Config.fromfile(osp.join(ROOT, DETECTOR_CONFIG))
    init_default_scope('mmdet')
    cfg.model.test_cfg.rcnn.max_per_img = 20  # keeps the stored masks small
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    weights_sum = sum(p.double().sum().item() for p in model.state_dict().values() if p.is_floating_point())

    gen = torch.Generator().manual_seed(2)
    h, w = 128, 160
    inputs, samples = [], []
    for i in range(2):
        img = torch.randint(0, 60, (3, h, w), generator=gen, dtype=torch.uint8)
        inst = InstanceData()
        boxes = torch.tensor([[10., 12., 70., 60.], [80., 40., 150., 120.], [30 + 10 * i, 70., 90., 118.]])
        masks = np.zeros((3, h, w), np.uint8)
        for k, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
            img[k, y1:y2, x1:x2] = 200
            masks[k, y1:y2, x1:x2] = 1
        inst.bboxes, inst.labels = boxes, torch.tensor([0, 1, 2])
        inst.masks = BitmapMasks(masks, h, w)
        s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.)))
        s.gt_instances = inst
        inputs.append(img)
        samples.append(s)
    batch = dict(inputs=inputs, data_samples=samples)

    model.train()
    torch.manual_seed(3)  # the RPN / RoI samplers draw random numbers
    data = model.data_preprocessor(batch, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    loss, _ = model.parse_losses(losses)
    loss.backward()
    grads = {name: p.grad.double().abs().sum().item() for name, p in model.named_parameters()
             if p.grad is not None and ('roi_head' in name or 'neck.fpn_convs.0' in name or 'stem' in name)}

    model.eval()
    with torch.no_grad():
        preds = model.test_step(batch)
    predictions = []
    for p in preds:
        inst = p.pred_instances
        predictions.append(dict(bboxes=inst.bboxes, scores=inst.scores, labels=inst.labels,
                                masks=torch.from_numpy(np.packbits(inst.masks.numpy(), axis=-1))))
    return dict(weights_sum=weights_sum, losses={k: (sum(v) if isinstance(v, list) else v).item()
                                                 for k, v in losses.items() if 'loss' in k},
                loss=loss.item(), grads=grads, predictions=predictions)


def compute(detector=True):
    torch.set_num_threads(1)
    out = dict(roi_align=roi_align_cases(), nms=nms_cases())
    if detector:
        out['detector'] = detector_case()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default=REFERENCE)
    args = parser.parse_args()
    import densedet  # noqa: F401  (registers the models)
    from densedet.ops.mmcv_ext import backend
    if backend() != 'compiled':
        sys.exit(f'the reference must come from compiled mmcv ops; mmcv._ext here is served by {backend()}')
    import mmcv
    result = compute()
    result['meta'] = dict(mmcv=str(mmcv.__version__), torch=str(torch.__version__))
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    torch.save(result, args.out)
    print(f'wrote {args.out} ({osp.getsize(args.out) / 1024:.0f} KiB)')


if __name__ == '__main__':
    main()
