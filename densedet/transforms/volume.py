"""Transforms of the volume path, on ``(C, D, H, W)`` images and ``(D, H, W)`` labels.

Written by hand (numpy / torch) rather than taken from MONAI: they run inside mmcv's
``BaseTransform`` pipelines on the plain ``results`` dict the mmengine datasets produce,
keep densedet's affine bookkeeping, and are a few lines each. Resampling uses
``torch.nn.functional.interpolate`` (trilinear for images, ``nearest-exact`` for labels),
which measured faster than ``scipy.ndimage.zoom`` order 1 on CPU.
"""
import os
from functools import lru_cache
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS

from densedet.datasets.planning import load_plans, nonzero_bbox
from densedet.errors import BadConfigError, BadDataError
from densedet.fileio import read_nifti
from densedet.structures import IGNORE_INDEX, VolumeDataSample

UNDECLARED = 254  # lookup-table marker of a label value the dataset does not declare


def _triple(value: Union[int, float, Sequence], name: str) -> tuple:
    if isinstance(value, (int, float)):
        return (value, ) * 3
    value = tuple(value)
    if len(value) != 3:
        raise BadConfigError(f'{name} needs 3 values (D, H, W), got {value}')
    return value


@TRANSFORMS.register_module()
class LoadVolumeFromFile(BaseTransform):
    """Reads a case's image channels and label with nibabel, checking them.

    Adds ``img`` (float32, ``(C, D, H, W)``), ``gt_seg`` (uint8, ``(D, H, W)``, label values
    mapped to 0..K-1), ``affine`` / ``header`` of the first image file, ``spacing`` (mm,
    ``(D, H, W)``), ``ori_shape``, ``ori_spacing``, ``ori_affine``, ``img_shape``.

    Raises one ``ValueError`` naming the case and file for: a 4D image where the dataset
    declares one channel, channel files or image/label of different shapes or affines, label
    values outside the dataset's declared labels, unreadable files.

    Args:
        with_label: read ``seg_path`` (if the case has one).
        affine_atol: tolerance when comparing affines (mm).
    """

    def __init__(self, with_label: bool = True, affine_atol: float = 1e-3):
        self.with_label = with_label
        self.affine_atol = affine_atol

    def _check_geometry(self, case: str, ref, other, what: str):
        if other.data.shape[-3:] != ref.data.shape[-3:]:
            raise BadDataError(f'case {case!r}: {what} {other.path} has shape {other.data.shape[-3:]} (D, H, W) '
                               f'but the image {ref.path} has {ref.data.shape[-3:]}')
        if not np.allclose(other.affine, ref.affine, atol=self.affine_atol):
            raise BadDataError(f'case {case!r}: {what} {other.path} has a different affine from the image {ref.path}: '
                               f'{np.round(other.affine, 4).tolist()} vs {np.round(ref.affine, 4).tolist()}')

    def transform(self, results: dict) -> dict:
        case = results.get('case_id', results['img_paths'][0])
        paths = results['img_paths']
        expected = results.get('num_channels')
        volumes = [read_nifti(p, channels=len(paths) == 1 and expected != 1, what=f'case {case!r} image')
                   for p in paths]
        first = volumes[0]
        for v in volumes[1:]:
            self._check_geometry(case, first, v, 'channel file')
        img = np.concatenate([v.data if v.data.ndim == 4 else v.data[None] for v in volumes])
        if expected is not None and img.shape[0] != expected:
            raise BadDataError(f'case {case!r}: image {paths[0]} has {img.shape[0]} channel(s), the dataset declares '
                               f'{expected} modalities (a 4D file where 3D is expected?)')
        results.update(img=img, affine=first.affine, ori_affine=first.affine.copy(), header=first.header,
                       spacing=first.spacing, ori_spacing=first.spacing, ori_shape=img.shape[1:],
                       img_shape=img.shape[1:])
        if self.with_label and results.get('seg_path'):
            seg = read_nifti(results['seg_path'], dtype=None, what=f'case {case!r} label')
            self._check_geometry(case, first, seg, 'label')
            results['gt_seg'] = map_labels(case, seg, results.get('label_values'))
        return results


def map_labels(case: str, seg, label_values: Optional[Sequence[int]]) -> np.ndarray:
    """A label volume's values -> class indices 0..K-1 (uint8), checking they are declared.

    One pass through a lookup table (no sort of the whole volume: ``np.unique`` on a LiTS
    label takes seconds per sample); the values at fault are gathered only on error.
    """
    data = seg.data
    if data.dtype.kind == 'f':
        if not np.isfinite(data).all() or not np.array_equal(data, np.round(data)):
            raise BadDataError(f'case {case!r}: label {seg.path} holds non-integer values')
        data = data.astype(np.int64)
    lo, hi = int(data.min()), int(data.max())
    declared = list(range(hi + 1)) if label_values is None else [int(v) for v in label_values]
    if len(declared) >= UNDECLARED:
        raise BadDataError(f'case {case!r}: {len(declared)} labels; at most {UNDECLARED - 1} are supported')
    base = min(lo, 0)  # labels are usually >= 0: index the table with the data as it is, no copy
    if hi - base > 2**16:  # a table that large means undeclared values anyway
        mapped = None
    else:
        lut = np.full(hi - base + 1, UNDECLARED, dtype=np.uint8)
        for index, value in enumerate(declared):
            if base <= value <= hi:
                lut[value - base] = index
        mapped = lut[data] if base == 0 else lut[np.subtract(data, base, dtype=np.int64)]
    if mapped is None or (mapped == UNDECLARED).any():
        outside = data[~np.isin(data, declared)]
        raise BadDataError(f'case {case!r}: label {seg.path} has values {sorted(np.unique(outside).tolist())} outside '
                           f'the declared labels {declared}')
    return mapped


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
        results['img'] = out
        return results


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
    (tools/data/plan_volumes.py; read when first used)."""

    def __init__(self, spacing: Optional[Sequence[Optional[float]]] = None, plans_file: Optional[str] = None):
        if (spacing is None) == (plans_file is None):
            raise BadConfigError('ResampleSpacing: give spacing or plans_file (one of them)')
        self.spacing = _triple(spacing, 'ResampleSpacing.spacing') if spacing is not None else None
        self.plans_file = plans_file

    def transform(self, results: dict) -> dict:
        target = self.spacing or load_plans(self.plans_file)['target_spacing']
        old_spacing = results['spacing']
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


def _foreground_locations(path: str) -> Dict[int, np.ndarray]:
    """A case's stored foreground locations, class -> ``(n, 3)`` (read once per worker process and
    file version: at most ~120 kB per class)."""
    return _read_locations(path, os.stat(path).st_mtime_ns)


@lru_cache(maxsize=512)
def _read_locations(path: str, mtime_ns: int) -> Dict[int, np.ndarray]:
    with np.load(path) as stored:
        return {int(k.split('_')[1]): stored[k] for k in stored.files}


@TRANSFORMS.register_module()
class LoadPreprocessedPatch(RandomPatchCrop):
    """A random ``patch_size`` patch of a preprocessed case (tools/data/preprocess_volumes.py),
    read through a memory map: only the patch's voxels are read, never the whole case.

    Same arguments and sampling as :class:`RandomPatchCrop`, on the stored grid: with probability ``fg_ratio``
    centred on a foreground voxel (a random class among those present, then a random voxel of the
    locations stored for it), else uniform; a case smaller than the patch is padded at the end
    (image ``pad_val``, label ``seg_pad_val`` = ignored). Adds what ``LoadVolumeFromFile`` +
    the preprocessing would have added (``spacing``, ``affine``, ``ori_*``, ``case_id``) and
    ``crop_bbox`` on the stored grid.
    """

    def _stored_foreground_centre(self, locations_path: str) -> Optional[np.ndarray]:
        stored = _foreground_locations(locations_path)
        cls = self._pick_class([c for c in sorted(stored) if len(stored[c])])
        if cls is None:
            return None
        voxels = stored[cls]
        return voxels[np.random.randint(len(voxels))].astype(np.int64)

    def transform(self, results: dict) -> dict:
        img = np.load(results['img_paths'][0], mmap_mode='r')
        seg = np.load(results['seg_path'], mmap_mode='r') if results.get('seg_path') else None
        shape = np.asarray(img.shape[1:])
        size = np.asarray(self.patch_size)
        centre = None
        if seg is not None and np.random.rand() < self.fg_ratio:
            centre = self._stored_foreground_centre(results['locations_path'])
        start = patch_start(np.maximum(shape, size), size, centre)
        # the part of the patch inside the stored case; the rest stays padding
        stop = np.minimum(start + size, shape)
        src = tuple(slice(int(a), int(b)) for a, b in zip(start, stop))
        dst = tuple(slice(0, int(b - a)) for a, b in zip(start, stop))
        inside = bool((stop - start == size).all())
        if inside:  # one copy out of the map
            patch = np.array(img[(slice(None), ) + src], dtype=np.float32)
        else:
            patch = np.full((img.shape[0], ) + self.patch_size, self.pad_val, np.float32)
            patch[(slice(None), ) + dst] = img[(slice(None), ) + src]
        results['img'] = patch
        if seg is not None:
            if inside:
                label = np.array(seg[src], dtype=np.uint8)
            else:
                label = np.full(self.patch_size, self.seg_pad_val, np.uint8)
                label[dst] = seg[src]
            results['gt_seg'] = label
        results['crop_bbox'] = tuple((int(a), int(a + p)) for a, p in zip(start, size))
        results['img_shape'] = self.patch_size
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


@TRANSFORMS.register_module()
class PackVolumeInputs(BaseTransform):
    """``inputs`` (float tensor ``(C, D, H, W)``) + a :class:`VolumeDataSample` with ``gt_seg``
    (long tensor) and the meta keys the model and the metrics use."""

    DEFAULT_META_KEYS = ('case_id', 'img_paths', 'seg_path', 'classes', 'label_values', 'ori_shape', 'ori_spacing',
                         'ori_affine', 'affine', 'header', 'spacing', 'img_shape', 'pad_shape', 'crop_bbox',
                         'flip_axes')

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS):
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> Dict:
        sample = VolumeDataSample()
        if 'gt_seg' in results:
            sample.gt_seg = torch.from_numpy(np.ascontiguousarray(results['gt_seg'])).long()
        meta = {k: results[k] for k in self.meta_keys if k in results}
        meta.setdefault('pad_shape', tuple(results['img'].shape[1:]))
        sample.set_metainfo(meta)
        return dict(inputs=torch.from_numpy(np.ascontiguousarray(results['img'], dtype=np.float32)),
                    data_samples=sample)
