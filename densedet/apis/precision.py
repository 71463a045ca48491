"""Low-precision inference: one autocast rule for the tools and the inference APIs.

bfloat16 on CPU (the only dtype CPU autocast supports; exact on every op that has no bf16 kernel,
which autocast leaves in float32) and float16 on CUDA, as ``tools/train.py --amp`` trains.
"""
import contextlib

import torch


def autocast_dtype(device_type: str) -> torch.dtype:
    return torch.bfloat16 if device_type == 'cpu' else torch.float16


def inference_autocast(model_or_device, enabled: bool = True):
    """``torch.autocast`` for the device of ``model_or_device`` (a module, a device or its name);
    a no-op context when ``enabled`` is False."""
    if not enabled:
        return contextlib.nullcontext()
    if isinstance(model_or_device, torch.nn.Module):
        param = next(model_or_device.parameters(), None)
        device = param.device if param is not None else torch.device('cpu')
    else:
        device = torch.device(model_or_device)
    return torch.autocast(device_type=device.type, dtype=autocast_dtype(device.type))
