"""Loading transforms of the volume path: NIfTI cases (image channels and label, affines checked,
label values mapped to class indices) and patches of preprocessed cases read through a memory map."""
import os
from functools import lru_cache
from typing import Dict, Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from densedet.errors import BadConfigError, BadDataError
from densedet.fileio import read_nifti
from densedet.registry import TRANSFORMS
from densedet.structures import IGNORE_INDEX

from .volume_spatial import RandomPatchCrop, patch_start

UNDECLARED = 254  # lookup-table marker of a label value the dataset does not declare


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
            results['gt_seg'] = map_labels(case, seg, results.get('label_values'), results.get('ignore_value'))
        return results


def map_labels(case: str, seg, label_values: Optional[Sequence[int]], ignore_value: Optional[int] = None) -> np.ndarray:
    """A label volume's values -> class indices 0..K-1 (uint8), checking they are declared;
    ``ignore_value`` (unannotated voxels) -> ``IGNORE_INDEX``.

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
        if ignore_value is not None and base <= ignore_value <= hi:
            lut[ignore_value - base] = IGNORE_INDEX
        mapped = lut[data] if base == 0 else lut[np.subtract(data, base, dtype=np.int64)]
    if mapped is None or (mapped == UNDECLARED).any():
        outside = data[~np.isin(data, declared + ([ignore_value] if ignore_value is not None else []))]
        raise BadDataError(f'case {case!r}: label {seg.path} has values {sorted(np.unique(outside).tolist())} outside '
                           f'the declared labels {declared}')
    return mapped


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
    ``crop_bbox`` on the stored grid (may start before 0 or end past the case: padding).

    ``crop_size``: without it, the patch is placed as :class:`RandomPatchCrop` places it (inside
    the case, a smaller case padded at the end). When a spatial augmentation crops the centre
    ``crop_size`` out of this region (``NnUNetAugmentation``; ``patch_size`` is then its
    ``spatial_input_size``), the region may reach half the difference past the case on each side
    (nnU-Net's loader bounds): the crop then covers the case up to its borders and holds a sampled
    foreground voxel even at the border; a case smaller than the region sits in its middle.
    """

    def _stored_foreground_centre(self, locations_path: str) -> Optional[np.ndarray]:
        stored = _foreground_locations(locations_path)
        cls = self._pick_class([c for c in sorted(stored) if len(stored[c])])
        if cls is None:
            return None
        voxels = stored[cls]
        return voxels[np.random.randint(len(voxels))].astype(np.int64)

    def __init__(self, patch_size: Sequence[int], fg_ratio: float = 1 / 3, fg_classes: Optional[Sequence[int]] = None,
                 pad_val: float = 0.0, seg_pad_val: int = IGNORE_INDEX, crop_size: Optional[Sequence[int]] = None):
        super().__init__(patch_size, fg_ratio, fg_classes, pad_val, seg_pad_val)
        self.margin = None
        if crop_size is not None:
            crop = tuple(int(c) for c in crop_size)
            if len(crop) != 3 or any(c > p for c, p in zip(crop, self.patch_size)):
                raise BadConfigError(f'LoadPreprocessedPatch: crop_size {crop} must be 3 sizes no larger than '
                                     f'patch_size {self.patch_size}')
            self.margin = np.asarray(self.patch_size) - np.asarray(crop)

    def _region_start(self, shape: np.ndarray, centre: Optional[np.ndarray]) -> np.ndarray:
        """First voxel of the loaded region (may be negative: padding before the case). nnU-Net's
        bounds: the region may reach half the ``margin`` past each side of the case, and at least
        far enough to centre a case smaller than the region."""
        size = np.asarray(self.patch_size)
        if self.margin is None:  # RandomPatchCrop's placement: inside the case, which is padded at the end
            return patch_start(np.maximum(shape, size), size, centre)
        need = np.where(self.margin + shape < size, size - shape, self.margin)
        low, high = -(need // 2), shape + need // 2 + need % 2 - size
        if centre is None:
            return np.array([np.random.randint(a, b + 1) for a, b in zip(low, high)])
        return np.clip(centre - size // 2, low, high)

    def transform(self, results: dict) -> dict:
        img = np.load(results['img_paths'][0], mmap_mode='r')
        seg = np.load(results['seg_path'], mmap_mode='r') if results.get('seg_path') else None
        shape = np.asarray(img.shape[1:])
        size = np.asarray(self.patch_size)
        centre = None
        if seg is not None and np.random.rand() < self.fg_ratio:
            centre = self._stored_foreground_centre(results['locations_path'])
        start = self._region_start(shape, centre)
        # the part of the region inside the stored case; the rest stays padding
        first, stop = np.maximum(start, 0), np.minimum(start + size, shape)
        src = tuple(slice(int(a), int(b)) for a, b in zip(first, stop))
        dst = tuple(slice(int(a - s), int(b - s)) for a, b, s in zip(first, stop, start))
        inside = bool((start >= 0).all() and (stop - start == size).all())
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
