"""Intensity transforms of the volume path: a fixed window, z-score normalisation, and the
normalisation a task's plans decide (CT: clip + global statistics; other modalities: per case)."""
from typing import Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from densedet.errors import BadConfigError, BadDataError
from densedet.fileio import load_plans
from densedet.registry import TRANSFORMS

from .plans_normalization import normalize_from_plans


@TRANSFORMS.register_module()
class IntensityWindow(BaseTransform):
    """Clips intensities to ``window`` (CT: HU, e.g. ``(-200, 250)`` for liver) and rescales
    them linearly to ``out_range``."""

    def __init__(self, window: Tuple[float, float] = (-200.0, 250.0), out_range: Tuple[float, float] = (0.0, 1.0)):
        low, high = window
        if not high > low:
            raise BadConfigError(f'IntensityWindow: window must be (low, high) with high > low, got {window}')
        self.window, self.out_range = (float(low), float(high)), tuple(out_range)

    def transform(self, results: dict) -> dict:
        (low, high), (a, b) = self.window, self.out_range
        img = np.clip(results['img'], low, high)
        results['img'] = ((img - low) * ((b - a) / (high - low)) + a).astype(np.float32)
        return results


@TRANSFORMS.register_module()
class ZScoreNormalize(BaseTransform):
    """``(x - mean) / std`` per channel: dataset statistics when given (nnU-Net's CT scheme),
    else the case's own (nnU-Net's MR scheme)."""

    def __init__(self, mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None):
        if (mean is None) != (std is None):
            raise BadConfigError('ZScoreNormalize: give both mean and std, or neither')
        self.mean, self.std = mean, std

    def transform(self, results: dict) -> dict:
        img = results['img'].astype(np.float32)
        axes = (1, 2, 3)
        mean = np.asarray(self.mean, np.float32).reshape(-1, 1, 1, 1) if self.mean is not None else img.mean(
            axes, keepdims=True)
        std = np.asarray(self.std, np.float32).reshape(-1, 1, 1, 1) if self.std is not None else img.std(
            axes, keepdims=True)
        results['img'] = (img - mean) / np.maximum(std, 1e-8)
        return results


@TRANSFORMS.register_module()
class NormalizeFromPlans(BaseTransform):
    """Each channel as the plans say (tools/data/plan_volumes.py): ``CT``: clip to the dataset's
    foreground 0.5 / 99.5 percentiles, then ``(x - mean) / std`` with its foreground statistics;
    ``zscore``: the case's own mean / std."""

    def __init__(self, plans_file: str):
        self.plans_file = plans_file

    def transform(self, results: dict) -> dict:
        schemes = load_plans(self.plans_file)['normalization']
        img = results['img']
        if len(schemes) != img.shape[0]:
            raise BadDataError(f'case {results.get("case_id")!r}: {img.shape[0]} channel(s), the plans '
                               f'{self.plans_file} normalise {len(schemes)}')
        results['img'] = normalize_from_plans(img, schemes)
        return results
