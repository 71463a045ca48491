"""Low-precision inference: one autocast rule for the tools and the inference APIs.

bfloat16 on CPU (the only dtype CPU autocast supports; exact on every op that has no bf16 kernel,
which autocast leaves in float32) and float16 on CUDA, as ``tools/train.py --amp`` trains.
"""
import contextlib

import torch

from densedet.engine.wrappers import unwrap_model


def autocast_dtype(device_type: str) -> torch.dtype:
    return torch.bfloat16 if device_type == 'cpu' else torch.float16


def inference_autocast(model_or_device, enabled: bool = True):
    """``torch.autocast`` for the device of ``model_or_device`` (a module, a device or its name);
    a no-op context when ``enabled`` is False.

    For an mmdet detector only its feature extractor (backbone + neck, ``extract_feat``) runs in
    low precision and hands float32 maps to the heads: boxes decoded in bf16 (8-bit mantissa) would
    move in 2 px steps at x = 300, and mmdet's ``CocoMetric`` cannot even read bf16 boxes.
    """
    if not enabled:
        return contextlib.nullcontext()
    if isinstance(model_or_device, torch.nn.Module):
        param = next(model_or_device.parameters(), None)
        device = param.device if param is not None else torch.device('cpu')
        model = unwrap_model(model_or_device)
        if _is_detector(model):
            return _feature_autocast(model, device)
    else:
        device = torch.device(model_or_device)
    return torch.autocast(device_type=device.type, dtype=autocast_dtype(device.type))


def _is_detector(model: torch.nn.Module) -> bool:
    try:
        from mmdet.models.detectors import BaseDetector
    except ImportError:
        return False
    return isinstance(model, BaseDetector)


@contextlib.contextmanager
def _feature_autocast(detector: torch.nn.Module, device: torch.device):
    """Inside the block, ``detector.extract_feat`` runs under autocast and returns float32 maps."""
    extract_feat = detector.extract_feat

    def low_precision_features(*args, **kwargs):
        with torch.autocast(device_type=device.type, dtype=autocast_dtype(device.type)):
            feats = extract_feat(*args, **kwargs)
        return tuple(f.float() for f in feats) if isinstance(feats, (tuple, list)) else feats.float()

    detector.extract_feat = low_precision_features  # an instance attribute shadows the method
    try:
        yield
    finally:
        del detector.extract_feat
