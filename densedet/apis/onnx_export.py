"""ONNX export of densedet's segmentors: whole-image logits, preprocessing inside the graph.

    from densedet.apis import init_model, export_onnx
    model = init_model('configs/upernet_rdnet_ade20k.py', 'iter_160000.pth')
    export_onnx(model, 'upernet_rdnet-t.onnx', shape=(512, 512))

The graph takes what an image file holds, ``float32`` BGR pixels in 0..255, ``(N, 3, H, W)`` (a
volume: ``(N, C, D, H, W)`` intensities after the config's test transforms), and returns the
logits at the input's size, ``(N, K, H, W)``; mean / std normalisation and the BGR->RGB swap of
the config's data preprocessor are part of the graph. 2D segmentors run their decode head once
over the whole input (``test_cfg.mode='slide'`` configs are exported as one window of the given
shape: resize the image to it, as ``tools/deploy/infer_onnx.py`` does); volume segmentors export
one window (``--shape D H W``, or any multiple of the network's stride with ``dynamic_size``), the
sliding window stays outside, and :func:`volume_metadata` records what the rest of the pipeline
needs (resampling, normalisation, window, blending, labels) for ``tools/deploy/infer_onnx.py``.

``dynamic_size=True`` (2D models) leaves H and W free as multiples of ``size_divisor`` (32); pad an
image to the next multiple, as mmseg's ``size_divisor`` does (``infer_onnx.py`` pads with
:func:`pad_pixel`, zero after normalisation), and crop the logits. For it the adaptive average
pooling (UperNet's PPM) is exported as two averaging matrices built from the input size: the
exporter's own decomposition is specialised to the example size and fails in onnxruntime at others.

Detectors: the RoI heads (RoIAlign over a data-dependent number of proposals) and the NMS are
not exported; :func:`export_onnx` exports backbone + neck (the FPN feature maps) for them.
"""
import copy
import os
import os.path as osp
from typing import Sequence

import torch
import torch.nn as nn

from densedet.errors import BadConfigError, UnsupportedError

# Free-size graphs take multiples of it: every 2D family's output stride divides 32.
SIZE_DIVISOR = 32


class _Preprocess(nn.Module):
    def __init__(self, data_preprocessor):
        super().__init__()
        mean = getattr(data_preprocessor, 'mean', None)
        std = getattr(data_preprocessor, 'std', None)
        self.register_buffer('mean', mean.clone() if mean is not None else None, persistent=False)
        self.register_buffer('std', std.clone() if std is not None else None, persistent=False)
        # mmseg's SegDataPreProcessor calls it channel_conversion, mmengine's (mmdet's) _channel_conversion
        self.bgr_to_rgb = bool(getattr(data_preprocessor, 'channel_conversion',
                                       getattr(data_preprocessor, '_channel_conversion', False)))

    def forward(self, x):
        if self.bgr_to_rgb:
            x = x.flip(1)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x


def pad_pixel(model) -> list:
    """The raw input pixel (the graph's channel order) that the graph normalises to zero: what a
    free-size graph's input is padded with (mmseg pads with zero after normalisation)."""
    pre = _Preprocess(model.data_preprocessor)
    if pre.mean is None:
        return [0.0] * 3
    mean = pre.mean.flatten().tolist()
    return mean[::-1] if pre.bgr_to_rgb else mean


class _OnImages(nn.Module):
    """A model fed raw pixels: its data preprocessor's normalisation runs first."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.preprocess = _Preprocess(model.data_preprocessor)


class SegmentorLogits(_OnImages):
    """An mmseg segmentor as ``image -> logits`` (whole-image inference)."""

    def forward(self, image):
        x = self.preprocess(image)
        size = tuple(x.shape[2:])
        # One meta: the decode heads read only the first (the output size); a list as long as the
        # batch would make the exported batch size a constant.
        return self.model.encode_decode(x, [dict(img_shape=size, ori_shape=size, pad_shape=size)])


class VolumeLogits(nn.Module):
    """A volume segmentor's network on one window."""

    def __init__(self, segmentor):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, window):
        return self.segmentor.forward_logits(window)


class DetectorFeatures(_OnImages):
    """A detector's backbone + neck (the feature maps its RPN and RoI heads read)."""

    def forward(self, image):
        return tuple(self.model.extract_feat(self.preprocess(image)))


def exportable(model) -> nn.Module:
    """The module that :func:`export_onnx` traces for ``model`` (built by ``init_model``)."""
    kind = getattr(model, 'kind', None)
    if kind == 'seg':
        return SegmentorLogits(model).eval()
    if kind == 'volume':
        return VolumeLogits(model).eval()
    if kind == 'det':
        return DetectorFeatures(model).eval()
    raise BadConfigError('export_onnx takes a model from densedet.apis.init_model')


def example_input(model, shape: Sequence[int], batch: int = 1, seed=None) -> torch.Tensor:
    """A random input of the exported graph: ``(batch, C, *shape)`` pixels in 0..255 for 2D models,
    intensities in 0..1 for volumes (``C`` from the config's backbone)."""
    volume = model.kind == 'volume'
    channels = model.cfg.model.get('backbone', {}).get('in_channels', 1) if volume else 3
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return torch.rand(batch, channels, *shape, generator=generator) * (1 if volume else 255)


class MatrixAdaptiveAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d`` as ``P_h @ x @ P_w^T`` with averaging matrices built from the input
    size (bin ``i`` of ``o`` over ``n``: ``[floor(i n / o), ceil((i + 1) n / o))``, PyTorch's bins).
    Same values up to float summation order; exports with a symbolic input size."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, ) * 2

    @staticmethod
    def averaging_matrix(bins: int, size, like: torch.Tensor) -> torch.Tensor:
        i = torch.arange(bins, device=like.device)
        start = torch.div(i * size, bins, rounding_mode='floor')
        end = torch.div((i + 1) * size + bins - 1, bins, rounding_mode='floor')
        j = torch.arange(size, device=like.device)
        inside = (j[None] >= start[:, None]) & (j[None] < end[:, None])
        return inside.to(like.dtype) / (end - start)[:, None].to(like.dtype)

    def forward(self, x):
        oh, ow = (size if o is None else o for o, size in zip(self.output_size, x.shape[-2:]))
        rows = self.averaging_matrix(oh, x.shape[-2], x)
        cols = self.averaging_matrix(ow, x.shape[-1], x)
        return torch.matmul(torch.matmul(rows, x), cols.transpose(0, 1))


def _with_matrix_pooling(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose ``nn.AdaptiveAvgPool2d`` layers are :class:`MatrixAdaptiveAvgPool2d`."""
    module = copy.deepcopy(module)
    for parent in module.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.AdaptiveAvgPool2d):
                setattr(parent, name, MatrixAdaptiveAvgPool2d(child.output_size))
    return module


def export_onnx(model, path: str, shape: Sequence[int], opset: int = 18, dynamic_batch: bool = False,
                dynamic_size: bool = False, size_divisor: int = SIZE_DIVISOR) -> nn.Module:
    """Exports ``model`` to ``path`` for inputs of ``(N, C, *shape)`` (shape: H W, or D H W for
    volumes). ``dynamic_batch``: N is free (else 1). ``dynamic_size`` (2D models): H and W are free
    multiples of ``size_divisor`` (else ``shape``; ``shape`` must be such multiples). Returns the
    exported wrapper (to compare with onnxruntime). The file is self-contained (weights inline) up
    to protobuf's 2 GB limit; larger models keep torch's ``PATH.data`` beside it."""
    dims_needed = 3 if model.kind == 'volume' else 2
    if len(shape) != dims_needed or any(int(s) <= 0 for s in shape):
        raise BadConfigError(f'--shape {" ".join(map(str, shape))}: a {model.kind} model takes {dims_needed} positive '
                             f'sizes ({"D H W" if dims_needed == 3 else "H W"})')
    wrapper = exportable(model)
    dims = {}
    if dynamic_batch:
        dims[0] = torch.export.Dim('batch', min=1, max=1024)
    if dynamic_size:
        divisors = volume_size_divisor(model) if model.kind == 'volume' else (size_divisor, ) * 2
        what = 'x'.join(map(str, divisors)) if model.kind == 'volume' else str(size_divisor)
        if any(s % d for s, d in zip(shape, divisors)):
            raise BadConfigError(f'dynamic_size: the example shape {tuple(shape)} must be a multiple of '
                                 f'size_divisor={what}')
        if any(s // d < 2 for s, d in zip(shape, divisors)):  # a multiple of 1 would be traced as a constant
            raise BadConfigError(f'dynamic_size: the example shape {tuple(shape)} must be at least twice '
                                 f'size_divisor={what} on every axis')
        # Sizes declared as multiples: the exporter can then prove that every stride divides them.
        names = ('depth', 'height', 'width')[-len(divisors):]
        for axis, (name, div) in enumerate(zip(names, divisors), start=2):
            dims[axis] = div * torch.export.Dim(f'{name}_div{div}', min=1, max=8192 // div)
    traced = _with_matrix_pooling(wrapper) if dynamic_size else wrapper
    # A dynamic batch is traced with 2 (1 would be specialised) and without mkldnn: its conv backend
    # choice depends on the batch size, which would put a batch guard into the graph.
    example = example_input(model, shape, batch=2 if dynamic_batch else 1)
    with torch.no_grad(), torch.backends.mkldnn.flags(enabled=not dynamic_batch):
        outputs = ['logits'] if model.kind != 'det' else [f'feat{i}' for i in range(len(wrapper(example)))]
        # torch's dynamo exporter: the TorchScript one cannot export adaptive pooling (UperNet's
        # PPM) at sizes that are not multiples of the pooled sizes.
        torch.onnx.export(traced, (example,), path, input_names=['input'], output_names=outputs,
                          opset_version=opset, dynamo=True, dynamic_shapes=(dims, ) if dims else None)
    _inline_weights(path)
    return wrapper


def volume_size_divisor(model) -> tuple:
    """The network's stride per axis (the data preprocessor's ``size_divisor``, ``(D, H, W)``)."""
    div = model.cfg.model.get('data_preprocessor', {}).get('size_divisor') or 1
    return tuple(int(d) for d in (div if isinstance(div, (tuple, list)) else (div, ) * 3))


# The test-pipeline steps tools/deploy/onnx_volume.py reproduces without torch, and what they record.
_VOLUME_STEPS = ('LoadVolumeFromFile', 'NormalizeFromPlans', 'IntensityWindow', 'ZScoreNormalize', 'ResampleSpacing',
                 'PackVolumeInputs')


def volume_metadata(model) -> dict:
    """What ``tools/deploy/infer_onnx.py`` needs besides the network to segment a NIfTI case: the
    config's test pipeline as steps with their plans (target spacing, normalisation scheme and
    statistics), the window (``roi_size``), overlap, Gaussian blending sigma, mirroring, the
    network's stride, class names, label values and regions. ``flip_axes``: the mirroring TTA as
    sets of tensor dims (2-4), each averaged with the unflipped pass."""
    from densedet.fileio import load_plans
    cfg = model.cfg
    pipeline = []
    for step in cfg.test_dataloader.dataset.pipeline:
        kind = step['type'] if isinstance(step['type'], str) else step['type'].__name__
        if kind not in _VOLUME_STEPS:
            raise UnsupportedError(f'test pipeline step {kind!r} has no torch-free version in '
                                   f'tools/deploy/onnx_volume.py (it runs {", ".join(_VOLUME_STEPS)})')
        if kind == 'NormalizeFromPlans':
            pipeline.append(dict(type=kind, schemes=load_plans(step['plans_file'])['normalization']))
        elif kind == 'ResampleSpacing':
            plans = load_plans(step['plans_file']) if step.get('plans_file') else {}
            spacing = step.get('spacing') or plans['target_spacing']
            pipeline.append(dict(type=kind, spacing=list(spacing), axes=plans.get('axes')))
        elif kind == 'IntensityWindow':
            pipeline.append(dict(type=kind, window=list(step.get('window', (-200.0, 250.0))),
                                 out_range=list(step.get('out_range', (0.0, 1.0)))))
        elif kind == 'ZScoreNormalize':
            pipeline.append(dict(type=kind, mean=step.get('mean'), std=step.get('std')))
    test_cfg = model.test_cfg
    flips = test_cfg.get('flip_axes')
    if not flips and test_cfg.get('mirror_axes'):
        from densedet.models.segmentors.sliding_window import mirror_flip_axes
        flips = mirror_flip_axes(test_cfg['mirror_axes'])
    meta = model.dataset_meta or {}
    roi = test_cfg.get('roi_size')
    return dict(pipeline=pipeline, roi_size=list(roi) if roi else None, overlap=test_cfg.get('overlap', 0.5),
                sigma_scale=test_cfg.get('sigma_scale', 0.125), blend=test_cfg.get('blend', 'gaussian'),
                flip_axes=[list(f) for f in flips or []], size_divisor=list(volume_size_divisor(model)),
                classes=list(meta['classes']) if meta.get('classes') else None,
                label_values=list(meta['label_values']) if meta.get('label_values') is not None else None,
                regions=meta.get('regions'))


def _inline_weights(path: str, limit: int = 2**31 - 2**27) -> None:
    """Moves the weights that torch's exporter writes to ``PATH.data`` into the ``.onnx`` file: one
    file to hand on (and re-saving the graph, as the metadata step does, would leave the ``.data``
    file stale). Over protobuf's 2 GB limit they stay external."""
    data = f'{path}.data'
    if not osp.isfile(data) or osp.getsize(data) > limit:
        return
    import onnx
    onnx.save(onnx.load(path), path)  # load reads the external weights, save writes them inline
    os.remove(data)
