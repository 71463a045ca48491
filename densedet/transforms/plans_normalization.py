"""Intensity normalisation as the plans say, with numpy only: densedet's ``NormalizeFromPlans`` and
the torch-free ONNX volume pipeline (``tools/deploy/onnx_volume.py`` loads this file by its path,
without importing densedet) share it, so both normalise alike."""
import numpy as np


def normalize_from_plans(img: np.ndarray, schemes) -> np.ndarray:
    """``(C, D, H, W)`` -> float32, channel ``c`` by ``schemes[c]``: ``CT``: clip to the dataset's
    foreground 0.5 / 99.5 percentiles, then ``(x - mean) / std`` with its foreground statistics;
    ``zscore``: the case's own mean / std."""
    out = np.empty(img.shape, np.float32)
    for c, plan in enumerate(schemes):
        channel = img[c]
        if plan['scheme'] == 'CT':
            channel = np.clip(channel, *plan['clip'])
            mean, std = plan['mean'], plan['std']
        else:
            mean, std = float(channel.mean()), float(channel.std())
        np.subtract(channel, mean, out=out[c], casting='unsafe')
        out[c] /= max(std, 1e-8)
    return out
