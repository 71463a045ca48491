"""Gaussian-weighted sliding-window inference for N-d inputs.

Written here rather than calling ``monai.inferers.sliding_window_inference`` because the
segmentors need per-window flip TTA and a predictor that returns lower-resolution logits,
and because this version measured faster with less memory on CPU (``docs/benchmarks.md``:
one output buffer updated in place with ``addcmul_``, the weight map and the normalizer
computed once per geometry). The window positions and the Gaussian are MONAI's (the same
output for the same arguments, tested), so results compare one to one.
"""
import functools
import itertools
import math
from typing import Callable, List, Sequence, Tuple

import torch
import torch.nn.functional as F


def window_starts(size: int, roi: int, overlap: float) -> List[int]:
    """Start offsets along one axis: step ``int(roi * (1 - overlap))`` (at least 1), the last
    window shifted back to end at ``size`` (MONAI's ``dense_patch_slices`` rule)."""
    if roi >= size:
        return [0]
    step = max(int(roi * (1 - overlap)), 1)
    count = next(n for n in range(1, math.ceil(size / step) + 2) if (n - 1) * step + roi >= size)
    return [min(i * step, size - roi) for i in range(count)]


@functools.lru_cache(maxsize=8)
def _gaussian(roi: Tuple[int, ...], sigma_scale: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    weight = None
    for axis, n in enumerate(roi):
        x = torch.arange(n, dtype=torch.float32, device=device) - (n - 1) / 2.0
        g = torch.exp(-x**2 / (2 * (sigma_scale * n)**2))
        g = g.view([-1 if a == axis else 1 for a in range(len(roi))])
        weight = g if weight is None else weight * g
    # Far corners underflow towards 0: floor them so every voxel keeps a positive weight.
    return weight.clamp_(min=max(weight.min().item(), 1e-3)).to(dtype)


def importance_map(roi: Sequence[int], blend: str = 'gaussian', sigma_scale: float = 0.125,
                   device='cpu', dtype=torch.float32) -> torch.Tensor:
    """Per-voxel weight of a window: a separable Gaussian (sigma = ``sigma_scale`` x roi) or
    ones (``blend='constant'``)."""
    if blend == 'constant':
        return torch.ones(tuple(roi), device=device, dtype=dtype)
    if blend != 'gaussian':
        raise ValueError(f"blend must be 'gaussian' or 'constant', got {blend!r}")
    return _gaussian(tuple(int(r) for r in roi), float(sigma_scale), torch.device(device), dtype)


def sliding_window_inference(inputs: torch.Tensor,
                             roi_size: Sequence[int],
                             predictor: Callable[[torch.Tensor], torch.Tensor],
                             overlap: float = 0.5,
                             sw_batch_size: int = 1,
                             blend: str = 'gaussian',
                             sigma_scale: float = 0.125) -> torch.Tensor:
    """Runs ``predictor`` on overlapping ``roi_size`` windows of ``inputs`` (N, C, *spatial)
    and blends the window outputs with the importance weights.

    ``predictor`` takes a batch of windows and returns (B, K, *roi) or lower-resolution
    logits (resized to the window, trilinear/bilinear). Inputs smaller than the window are
    padded with zeros on both sides and the result cropped back. Returns (N, K, *spatial) float32.
    """
    if not 0 <= overlap < 1:
        raise ValueError(f'overlap must be in [0, 1), got {overlap}')
    spatial = tuple(inputs.shape[2:])
    roi = tuple(int(r) for r in roi_size)
    if len(roi) != len(spatial):
        raise ValueError(f'roi_size {roi} does not match the input\'s {len(spatial)} spatial dims {spatial}')
    padded = tuple(max(s, r) for s, r in zip(spatial, roi))
    before = tuple((p - s) // 2 for s, p in zip(spatial, padded))  # centred, as MONAI / nnU-Net
    if padded != spatial:
        pad = []
        for s, p, b in zip(reversed(spatial), reversed(padded), reversed(before)):
            pad += [b, p - s - b]
        inputs = F.pad(inputs, pad)
    roi = tuple(min(r, p) for r, p in zip(roi, padded))
    weight = importance_map(roi, blend, sigma_scale, inputs.device, torch.float32)
    starts = list(itertools.product(*(window_starts(p, r, overlap) for p, r in zip(padded, roi))))
    boxes = [tuple(slice(s, s + r) for s, r in zip(start, roi)) for start in starts]

    normalizer = torch.zeros(padded, device=inputs.device, dtype=torch.float32)
    for box in boxes:
        normalizer[box] += weight
    output = None
    jobs = [(n, box) for n in range(inputs.shape[0]) for box in boxes]
    for first in range(0, len(jobs), sw_batch_size):
        chunk = jobs[first:first + sw_batch_size]
        windows = torch.stack([inputs[(n, slice(None)) + box] for n, box in chunk])
        logits = predictor(windows)
        if tuple(logits.shape[2:]) != roi:
            mode = 'trilinear' if len(roi) == 3 else 'bilinear'
            logits = F.interpolate(logits, size=roi, mode=mode, align_corners=False)
        if output is None:
            output = torch.zeros((inputs.shape[0], logits.shape[1]) + padded, device=inputs.device,
                                 dtype=torch.float32)
        for (n, box), window_logits in zip(chunk, logits):
            output[(n, slice(None)) + box].addcmul_(window_logits.float(), weight)
    output.div_(normalizer)
    if padded != spatial:
        output = output[(slice(None), slice(None)) + tuple(slice(b, b + s) for b, s in zip(before, spatial))]
    return output
