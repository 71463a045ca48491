"""mmcv's RoIAlign / NMS served by torchvision (densedet/ops/mmcv_ext.py) vs mmcv's compiled ops.

Needs an environment that has compiled mmcv (the comparison's baseline), e.g.

    VENV=/tmp/mmcv-compiled MMCV_OPS=compiled bash tools/setup_env.sh
    /tmp/mmcv-compiled/bin/python tools/analysis/benchmark_mmcv_ops.py --rounds 5 --threads 2

One process, the same weights and inputs; the two implementations are swapped in and out of
``mmcv.ops.roi_align`` / ``mmcv.ops.nms`` (their ``ext_module``) and alternate round by round:

* Mask R-CNN RDNet-T (``configs/demo/mask-rcnn_rdnet_coco_demo.py``: the demo's train_cfg):
  a training step (``loss`` + backward, seeded samplers) on ``--batch`` images of ``--size`` and
  ``predict`` on one image;
* the ops alone at the detector's sizes: RoIAlign forward + backward (512 RoIs on a stride-4 FPN
  map, 7x7, and 128 RoIs at 14x14), NMS of 2000 boxes.

The table gives medians over rounds and the ratio torchvision / compiled (< 1: torchvision faster).
"""
import argparse
import importlib.util
import os.path as osp
import statistics
import sys
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'demo', 'mask-rcnn_rdnet_coco_demo.py')


def load_torchvision_ext():
    spec = importlib.util.spec_from_file_location('densedet_torchvision_ext',
                                                  osp.join(ROOT, 'densedet', 'ops', 'mmcv_ext.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def detector(size, batch):
    import numpy as np
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.structures import InstanceData
    cfg = Config.fromfile(CONFIG)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    h, w = size
    gen = torch.Generator().manual_seed(1)
    inputs, samples = [], []
    for _ in range(batch):
        xy = torch.rand(6, 2, generator=gen) * torch.tensor([w * 0.7, h * 0.7])
        boxes = torch.cat([xy, xy + torch.rand(6, 2, generator=gen) * torch.tensor([w * 0.3, h * 0.3]) + 8], 1)
        masks = np.zeros((6, h, w), np.uint8)
        for k, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
            masks[k, y1:y2, x1:x2] = 1
        inst = InstanceData(bboxes=boxes, labels=torch.arange(6) % 3)
        inst.masks = BitmapMasks(masks, h, w)
        s = DetDataSample(metainfo=dict(img_shape=size, ori_shape=size, scale_factor=(1., 1.)))
        s.gt_instances = inst
        inputs.append(torch.randint(0, 256, (3, h, w), generator=gen, dtype=torch.uint8))
        samples.append(s)
    return model, dict(inputs=inputs, data_samples=samples)


def workloads(size, batch):
    from mmcv.ops import nms, roi_align
    model, data = detector(size, batch)

    def train_step():
        model.train()
        torch.manual_seed(2)
        d = model.data_preprocessor(data, True)
        loss, _ = model.parse_losses(model.loss(d['inputs'], d['data_samples']))
        loss.backward()
        model.zero_grad(set_to_none=True)

    one = dict(inputs=data['inputs'][:1], data_samples=data['data_samples'][:1])

    def predict():
        model.eval()
        with torch.no_grad():
            model.test_step(one)

    gen = torch.Generator().manual_seed(3)
    h, w = size
    feats = torch.randn(batch, 256, h // 4, w // 4, generator=gen).requires_grad_(True)

    def rois(n):
        xy = torch.rand(n, 2, generator=gen) * torch.tensor([w * 0.8, h * 0.8])
        boxes = torch.cat([xy, xy + torch.rand(n, 2, generator=gen) * 64 + 4], 1)
        return torch.cat([torch.randint(0, batch, (n, 1), generator=gen).float(), boxes], 1)

    rois7, rois14 = rois(512), rois(128)

    def roi_align_7():
        roi_align(feats, rois7, 7, 0.25, 0, 'avg', True).sum().backward()

    def roi_align_14():
        roi_align(feats, rois14, 14, 0.25, 0, 'avg', True).sum().backward()

    boxes = rois(2000)[:, 1:]
    scores = torch.rand(2000, generator=gen)

    def nms_2000():
        nms(boxes, scores, 0.7)

    return {f'Mask R-CNN train step ({batch}x{h}x{w})': train_step, f'Mask R-CNN predict (1x{h}x{w})': predict,
            'RoIAlign 512 RoIs 7x7 fwd+bwd': roi_align_7, 'RoIAlign 128 RoIs 14x14 fwd+bwd': roi_align_14,
            'NMS 2000 boxes': nms_2000}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size', type=int, nargs=2, default=(480, 640), metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import mmcv.ops  # noqa: F401

    import densedet  # noqa: F401  (registers RDNet)
    # mmcv.ops re-binds the names nms / roi_align to functions: take the modules themselves.
    nms_module, roi_align_module = sys.modules['mmcv.ops.nms'], sys.modules['mmcv.ops.roi_align']
    from densedet.ops.mmcv_ext import backend
    if backend() != 'compiled':
        sys.exit(f'needs compiled mmcv ops as the baseline; mmcv._ext here is served by {backend()}')
    impls = {'compiled': nms_module.ext_module, 'torchvision': load_torchvision_ext()}
    work = workloads(tuple(args.size), args.batch)
    times = {(name, impl): [] for name in work for impl in impls}
    for name, fn in work.items():
        for impl, ext in impls.items():  # warm-up, each implementation once
            nms_module.ext_module = roi_align_module.ext_module = ext
            fn()
    for r in range(args.rounds):
        order = list(impls) if r % 2 == 0 else list(reversed(impls))
        for name, fn in work.items():
            for impl in order:
                nms_module.ext_module = roi_align_module.ext_module = impls[impl]
                t = time.perf_counter()
                fn()
                times[(name, impl)].append(time.perf_counter() - t)
    nms_module.ext_module = roi_align_module.ext_module = impls['compiled']
    print(f'torch {torch.__version__}, {args.threads} threads, {args.rounds} rounds (medians)')
    print('| workload | compiled mmcv (s) | torchvision (s) | torchvision / compiled |')
    print('|---|---|---|---|')
    for name in work:
        c = statistics.median(times[(name, 'compiled')])
        t = statistics.median(times[(name, 'torchvision')])
        print(f'| {name} | {c:.4f} | {t:.4f} | {t / c:.3f} |')


if __name__ == '__main__':
    main()
