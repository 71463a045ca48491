"""Spatial transforms of the volume path, on ``(C, D, H, W)`` images and ``(D, H, W)`` labels:
cropping to the non-zero region, resampling to a spacing, padding, patch sampling, flips and
90-degree rotations. They keep densedet's affine bookkeeping (``affine`` follows every change of
the voxel grid).

Written by hand (numpy / torch) rather than taken from MONAI: they run inside mmcv's
``BaseTransform`` pipelines on the plain ``results`` dict the mmengine datasets produce and are a
few lines each. Resampling uses ``torch.nn.functional.interpolate`` (trilinear for images,
``nearest-exact`` for labels), which measured faster than ``scipy.ndimage.zoom`` order 1 on CPU.
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform

from densedet.errors import BadConfigError, BadDataError
from densedet.fileio import load_plans, voxel_axes
from densedet.registry import TRANSFORMS
from densedet.structures import IGNORE_INDEX


def _triple(value: Union[int, float, Sequence], name: str) -> tuple:
    if isinstance(value, (int, float)):
        return (value, ) * 3
    value = tuple(value)
    if len(value) != 3:
        raise BadConfigError(f'{name} needs 3 values (D, H, W), got {value}')
    return value


def nonzero_bbox(img: np.ndarray) -> List[List[int]]:
    """``[[start, stop], ...]`` (D, H, W) of the voxels where any channel of ``(C, D, H, W)`` is
    non-zero (the whole volume if none is)."""
    mask = np.any(img != 0, axis=0)
    box = []
    for axis in range(3):
        hits = np.flatnonzero(np.any(mask, axis=tuple(a for a in range(3) if a != axis)))
        box.append([int(hits[0]), int(hits[-1]) + 1] if len(hits) else [0, mask.shape[axis]])
    return box


@TRANSFORMS.register_module()
class CropToNonzero(BaseTransform):
    """Crops image and label to the box of voxels where any image channel is non-zero (nnU-Net's
    first step: MR volumes are often mostly zeros); records ``nonzero_bbox`` (``[[start, stop],
    ...]``, D H W, on the file's grid) and moves ``affine`` to the box's first voxel."""

    def transform(self, results: dict) -> dict:
        box = nonzero_bbox(results['img'])
        region = tuple(slice(a, b) for a, b in box)
        if any(b - a != n for (a, b), n in zip(box, results['img'].shape[1:])):
            results['img'] = np.ascontiguousarray(results['img'][(slice(None), ) + region])
            if 'gt_seg' in results:
                results['gt_seg'] = np.ascontiguousarray(results['gt_seg'][region])
            shift = np.eye(4)
            shift[:3, 3] = [a for a, _ in box][::-1]  # (D, H, W) starts -> file axes (i, j, k)
            results['affine'] = results['affine'] @ shift
        results['nonzero_bbox'] = box
        results['img_shape'] = results['img'].shape[1:]
        return results


def resampled_affine(affine: np.ndarray, old_shape: Sequence[int], new_shape: Sequence[int]) -> np.ndarray:
    """Affine of a grid resampled from ``old_shape`` to ``new_shape`` (``(D, H, W)``) with
    half-pixel-centre sampling (``align_corners=False``): new voxel ``n`` sits at old
    ``(n + 0.5) * s - 0.5`` with ``s = old / new`` per axis."""
    scale = np.asarray(old_shape, np.float64) / np.asarray(new_shape, np.float64)
    scale = scale[::-1]  # (D, H, W) -> file axes (i, j, k)
    index_map = np.eye(4)
    index_map[:3, :3] = np.diag(scale)
    index_map[:3, 3] = 0.5 * scale - 0.5
    return affine @ index_map


def resize_volume(array: np.ndarray, shape: Sequence[int], is_label: bool) -> np.ndarray:
    """Resamples ``(C, D, H, W)`` (image, trilinear) or ``(D, H, W)`` (label, nearest)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if is_label:
        out = F.interpolate(tensor[None, None].float(), size=tuple(shape), mode='nearest-exact')[0, 0]
        return out.numpy().astype(array.dtype)
    out = F.interpolate(tensor[None].float(), size=tuple(shape), mode='trilinear', align_corners=False)[0]
    return out.numpy()


@TRANSFORMS.register_module()
class ResampleSpacing(BaseTransform):
    """Resamples image and label to ``spacing`` (mm, ``(D, H, W)``; ``None`` in an entry keeps
    that axis), trilinear for images and nearest for labels; updates ``spacing``,
    ``img_shape`` and ``affine`` (the original grid stays in ``ori_*`` for writing
    predictions back). ``plans_file`` instead of ``spacing``: the plans' ``target_spacing``
    (tools/data/plan_volumes.py; read when first used), and a case whose voxel axes run along
    other world axes than the training cases' (plans ``axes``: another slice direction) is
    refused. A spacing that is not positive and finite is refused either way."""

    def __init__(self, spacing: Optional[Sequence[Optional[float]]] = None, plans_file: Optional[str] = None):
        if (spacing is None) == (plans_file is None):
            raise BadConfigError('ResampleSpacing: give spacing or plans_file (one of them)')
        self.spacing = _triple(spacing, 'ResampleSpacing.spacing') if spacing is not None else None
        self.plans_file = plans_file

    def transform(self, results: dict) -> dict:
        plans = load_plans(self.plans_file) if self.plans_file else {}
        target = self.spacing or plans['target_spacing']
        old_spacing = results['spacing']
        case, path = results.get('case_id'), (results.get('img_paths') or ['?'])[0]
        if not all(np.isfinite(s) and s > 0 for s in old_spacing):
            raise BadDataError(f'case {case!r}: spacing {tuple(old_spacing)} mm of {path} is not positive and finite '
                               '(a broken pixdim in its header)')
        if plans.get('axes') and 'affine' in results and voxel_axes(results['affine']) != plans['axes']:
            raise BadDataError(
                f"case {case!r}: the voxel axes (D, H, W) of {path} run along {voxel_axes(results['affine'])}, the "
                f"training cases' along {plans['axes']} ({self.plans_file}): another slice direction than the "
                'network learnt; reorient the file to the training data\'s axes first')
        new_spacing = tuple(o if n is None else float(n) for o, n in zip(old_spacing, target))
        old_shape = results['img'].shape[1:]
        new_shape = tuple(max(1, int(round(s * o / n))) for s, o, n in zip(old_shape, old_spacing, new_spacing))
        if new_shape != tuple(old_shape):
            results['img'] = resize_volume(results['img'], new_shape, is_label=False)
            if 'gt_seg' in results:
                results['gt_seg'] = resize_volume(results['gt_seg'], new_shape, is_label=True)
            results['affine'] = resampled_affine(results['affine'], old_shape, new_shape)
        # the actual spacing of the rounded grid
        results['spacing'] = tuple(o * s / n for o, s, n in zip(old_spacing, old_shape, new_shape))
        results['img_shape'] = new_shape
        return results


def _pad_to(results: dict, shape: Sequence[int], pad_val: float, seg_pad_val: int) -> None:
    """Pads ``img`` / ``gt_seg`` at the end of each axis up to ``shape`` (no-op where larger)."""
    current = results['img'].shape[1:]
    pads = [(0, max(0, t - c)) for c, t in zip(current, shape)]
    if any(p[1] for p in pads):
        results['img'] = np.pad(results['img'], [(0, 0)] + pads, constant_values=pad_val)
        if 'gt_seg' in results:
            results['gt_seg'] = np.pad(results['gt_seg'], pads, constant_values=seg_pad_val)


def patch_start(shape: np.ndarray, size: np.ndarray, centre: Optional[np.ndarray]) -> np.ndarray:
    """First voxel of a ``size`` patch in a volume of ``shape`` (>= size): uniform, or centred on
    ``centre`` and shifted to stay inside."""
    if centre is None:
        return np.array([np.random.randint(0, s - p + 1) for s, p in zip(shape, size)])
    return np.clip(centre - size // 2, 0, shape - size)


@TRANSFORMS.register_module()
class RandomPatchCrop(BaseTransform):
    """Random ``patch_size`` crop; with probability ``fg_ratio`` (nnU-Net: 1/3) the patch is
    centred on a random voxel of a random foreground class present in the case (shifted to
    stay inside the volume). Volumes smaller than the patch are padded first (image with
    ``pad_val``, label with 255 = ignored).

    Args:
        fg_classes: the classes counted as foreground (default every label > 0).
    """

    def __init__(self, patch_size: Sequence[int], fg_ratio: float = 1 / 3, fg_classes: Optional[Sequence[int]] = None,
                 pad_val: float = 0.0, seg_pad_val: int = IGNORE_INDEX):
        name = type(self).__name__
        self.patch_size = tuple(int(p) for p in _triple(patch_size, f'{name}.patch_size'))
        if not 0 <= fg_ratio <= 1:
            raise BadConfigError(f'{name}: fg_ratio must be in [0, 1], got {fg_ratio}')
        self.fg_ratio, self.fg_classes = fg_ratio, fg_classes
        self.pad_val, self.seg_pad_val = pad_val, seg_pad_val

    def _pick_class(self, present: Sequence[int]) -> Optional[int]:
        """A random one of the foreground classes present (restricted to ``fg_classes``)."""
        if self.fg_classes is not None:
            present = [c for c in present if c in self.fg_classes]
        return present[np.random.randint(len(present))] if present else None

    def _foreground_centre(self, seg: np.ndarray) -> Optional[np.ndarray]:
        cls = self._pick_class([int(c) for c in np.unique(seg) if c not in (0, IGNORE_INDEX)])
        if cls is None:
            return None
        voxels = np.flatnonzero(seg == cls)  # 1/3 the memory of argwhere
        return np.array(np.unravel_index(voxels[np.random.randint(len(voxels))], seg.shape))

    def transform(self, results: dict) -> dict:
        _pad_to(results, self.patch_size, self.pad_val, self.seg_pad_val)
        shape = np.asarray(results['img'].shape[1:])
        size = np.asarray(self.patch_size)
        centre = None
        if 'gt_seg' in results and np.random.rand() < self.fg_ratio:
            centre = self._foreground_centre(results['gt_seg'])
        start = patch_start(shape, size, centre)
        box = tuple(slice(int(s), int(s + p)) for s, p in zip(start, size))
        results['img'] = results['img'][(slice(None), ) + box]
        if 'gt_seg' in results:
            results['gt_seg'] = results['gt_seg'][box]
        results['crop_bbox'] = tuple((int(s), int(s + p)) for s, p in zip(start, size))
        results['img_shape'] = tuple(self.patch_size)
        return results


@TRANSFORMS.register_module()
class RandomFlip3D(BaseTransform):
    """Flips image and label along each of ``axes`` (0 = D, 1 = H, 2 = W) independently with
    probability ``prob``."""

    def __init__(self, prob: float = 0.5, axes: Sequence[int] = (0, 1, 2)):
        self.prob, self.axes = prob, tuple(axes)

    def transform(self, results: dict) -> dict:
        flipped = tuple(a for a in self.axes if np.random.rand() < self.prob)
        if flipped:
            results['img'] = np.ascontiguousarray(np.flip(results['img'], axis=tuple(a + 1 for a in flipped)))
            if 'gt_seg' in results:
                results['gt_seg'] = np.ascontiguousarray(np.flip(results['gt_seg'], axis=flipped))
        results['flip_axes'] = flipped
        return results


@TRANSFORMS.register_module()
class RandomRot90(BaseTransform):
    """With probability ``prob`` rotates image and label by k x 90 degrees in the plane of
    ``axes`` (default H-W); k is 1..3 when the plane is square, else 2 (keeps the shape, so
    patches still batch)."""

    def __init__(self, prob: float = 0.5, axes: Tuple[int, int] = (1, 2)):
        self.prob, self.axes = prob, tuple(axes)

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        a, b = self.axes
        square = results['img'].shape[a + 1] == results['img'].shape[b + 1]
        k = np.random.randint(1, 4) if square else 2
        results['img'] = np.ascontiguousarray(np.rot90(results['img'], k, axes=(a + 1, b + 1)))
        if 'gt_seg' in results:
            results['gt_seg'] = np.ascontiguousarray(np.rot90(results['gt_seg'], k, axes=(a, b)))
        results['img_shape'] = results['img'].shape[1:]
        return results


@TRANSFORMS.register_module()
class PadVolume(BaseTransform):
    """Pads at the end of D/H/W to ``size`` and/or to a multiple of ``size_divisor`` (an int or
    one per axis; the network's total stride, e.g. ``(4, 32, 32)`` for H-DenseUNet's 3D
    branch). Image with ``pad_val``, label with ``seg_pad_val`` (ignored). Sets ``pad_shape``."""

    def __init__(self, size: Optional[Sequence[int]] = None, size_divisor: Union[int, Sequence[int], None] = None,
                 pad_val: float = 0.0, seg_pad_val: int = IGNORE_INDEX):
        if size is None and size_divisor is None:
            raise BadConfigError('PadVolume: give size and/or size_divisor')
        self.size = _triple(size, 'PadVolume.size') if size is not None else None
        self.size_divisor = _triple(size_divisor, 'PadVolume.size_divisor') if size_divisor is not None else None
        self.pad_val, self.seg_pad_val = pad_val, seg_pad_val

    def transform(self, results: dict) -> dict:
        target = list(results['img'].shape[1:])
        if self.size is not None:
            target = [max(t, s) for t, s in zip(target, self.size)]
        if self.size_divisor is not None:
            target = [-(-t // d) * d for t, d in zip(target, self.size_divisor)]
        _pad_to(results, target, self.pad_val, self.seg_pad_val)
        results['pad_shape'] = tuple(results['img'].shape[1:])
        return results
