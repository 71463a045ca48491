"""Every config in configs/ builds its model and runs one training step on CPU, calling only the mmcv
ops that densedet serves without compiled mmcv (densedet/ops/mmcv_ext.py). Prediction of every 2D
config, with the same check: tests/apis/test_ecosystem_apis.py."""
import contextlib
import glob
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def seg_samples(n, size, num_classes):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(n):
        s = SegDataSample(metainfo=dict(img_shape=size, pad_shape=size, ori_shape=size))
        s.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, *size)))
        samples.append(s)
    return samples


def det_samples(n, size, num_classes=80):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    h, w = size
    samples = []
    for _ in range(n):
        s = DetDataSample(metainfo=dict(img_shape=size, pad_shape=size, ori_shape=size, scale_factor=(1., 1.),
                                        batch_input_shape=size))
        inst = InstanceData()
        inst.bboxes = torch.tensor([[8., 8., 60., 70.], [40., 30., 120., 110.]])
        inst.labels = torch.tensor([1, 5]) % num_classes
        masks = torch.zeros(2, h, w, dtype=torch.uint8)
        masks[0, 8:70, 8:60] = 1
        masks[1, 30:110, 40:120] = 1
        inst.masks = BitmapMasks(masks.numpy(), h, w)
        s.gt_instances = inst
        samples.append(s)
    return samples


def volume_samples(n, size, num_classes, regions=None):
    """``regions``: a config's ``{name: [label values]}`` (labels 0..max drawn, as the dataset's)."""
    from densedet.datasets.volume import resolve_labels
    from densedet.structures import VolumeDataSample
    meta = dict(img_shape=size, ori_shape=size)
    if regions:
        values = list(range(max(max(v) for v in regions.values()) + 1))
        info = dict(label_values=values, classes=[str(v) for v in values])
        meta['regions'] = resolve_labels(info, dict(regions=regions), 'test', 'config')['regions']
        num_classes = len(values)
    samples = []
    for _ in range(n):
        s = VolumeDataSample(metainfo=meta)
        s.gt_seg = torch.randint(0, num_classes, size)
        samples.append(s)
    return samples


@contextlib.contextmanager
def record_mmcv_ext_calls():
    """Yields the set of ``mmcv._ext`` functions called inside the block, whichever implementation
    (compiled or torchvision) serves them: every loaded ``mmcv.ops`` module's ``ext_module`` is
    wrapped for the duration."""
    import mmcv.ops  # noqa: F401  (loads every op module)
    called = set()

    class Recorder:
        def __init__(self, ext):
            self._ext = ext

        def __getattr__(self, name):
            called.add(name)
            return getattr(self._ext, name)

    patched = [(m, m.ext_module) for name, m in list(sys.modules.items())
               if name.startswith('mmcv.ops.') and hasattr(m, 'ext_module')]
    for m, ext in patched:
        m.ext_module = Recorder(ext)
    try:
        yield called
    finally:
        for m, ext in patched:
            m.ext_module = ext


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_builds_and_trains_one_step(path):
    cfg = Config.fromfile(path)
    scope = cfg.get('default_scope', 'mmseg')
    init_default_scope(scope)
    from mmengine.registry import MODELS
    if cfg.model.get('backbone', {}).get('drop_path_rate'):  # stochastic depth drops whole blocks from a step
        cfg.model.backbone.drop_path_rate = 0.0
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    from densedet.apis.config import is_volume_model
    from densedet.ops.mmcv_ext import SERVED
    if is_volume_model(cfg.model):
        size = (16, 64, 64)
        num_classes = cfg.model.get('num_classes') or cfg.model.decode_head.num_classes
        in_channels = 1 if cfg.model.type == 'HDenseUNet' else cfg.model.backbone.in_channels
        inputs = torch.randn(1, in_channels, *size)
        samples = volume_samples(1, size, num_classes, cfg.val_dataloader.dataset.get('regions'))
    elif scope == 'mmdet':
        size = (128, 128)
        heads = cfg.model.roi_head.bbox_head if 'roi_head' in cfg.model else cfg.model.bbox_head  # single-stage
        num_classes = (heads[0] if isinstance(heads, list) else heads).num_classes
        inputs, samples = torch.randn(1, 3, *size), det_samples(1, size, num_classes)
    else:
        size = (64, 64)
        num_classes = cfg.model.decode_head.num_classes
        inputs, samples = torch.randn(2, 3, *size), seg_samples(2, size, num_classes)
    with record_mmcv_ext_calls() as called:
        losses = model.loss(inputs, samples)
        total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v) for k, v in losses.items() if 'loss' in k)
        assert torch.isfinite(total)
        total.backward()
    encoder = model.backbone if hasattr(model, 'backbone') else model  # H-DenseUNet: both branches
    trainable = [(n, p) for n, p in encoder.named_parameters() if p.requires_grad]
    # every trainable parameter, not just one: a detached branch would pass an any() check
    no_grad = [n for n, p in trainable if p.grad is None or not p.grad.abs().sum() > 0]
    assert trainable and not no_grad, f'{osp.relpath(path, ROOT)}: no gradient for {no_grad[:8]}'
    assert called <= set(SERVED), f'{osp.relpath(path, ROOT)} runs mmcv ops {sorted(called - set(SERVED))}'
    if 'roi_head' in cfg.model:  # the two-stage detectors are the configs that reach mmcv's ops
        assert {'roi_align_forward', 'roi_align_backward', 'nms'} <= called
