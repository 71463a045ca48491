"""The volume pipeline of tools/deploy/infer_onnx.py with numpy and nibabel only (no torch): what
densedet's test pipeline, data preprocessor and sliding-window ``predict`` do, driven by the plans
that tools/deploy/export_onnx.py writes into the ONNX metadata (``volume``):

read NIfTI -> intensity steps (plans' CT / z-score normalisation, HU window, z-score) -> resample
to the target spacing (trilinear) -> Gaussian sliding window (without a window: the whole case
padded to the network's stride)
(MONAI's grid and weights, the same as densedet's) -> crop -> logits resized back to the file's
grid (trilinear) -> argmax (or region painting) -> the dataset's label values -> NIfTI with the
input's affine and header.

The arithmetic follows PyTorch's where it matters for equal labels: linear resizing uses
``F.interpolate(..., align_corners=False)``'s source indices, and the window weights are MONAI's
``compute_importance_map``. Written here because densedet's own versions need torch.
"""
import math
import os
import os.path as osp
import tempfile

import nibabel as nib
import numpy as np

METADATA_KEY = 'volume'


def source_index(out_size: int, in_size: int):
    """``(i0, i1, lambda)`` per output index, as ``F.interpolate(..., align_corners=False)``."""
    scale = np.float32(in_size / out_size)
    src = np.maximum(scale * (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5), 0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    return i0, np.minimum(i0 + 1, in_size - 1), (src - i0).astype(np.float32)


def linear_resize(array: np.ndarray, shape) -> np.ndarray:
    """``(C, D, H, W)`` float32 resized to ``shape`` (trilinear: linear along each axis in turn)."""
    out = array.astype(np.float32, copy=False)
    for axis, size in zip((1, 2, 3), shape):
        if out.shape[axis] == size:
            continue
        i0, i1, lam = source_index(size, out.shape[axis])
        view = [1, 1, 1, 1]
        view[axis] = size
        lam = lam.reshape(view)
        a, b = np.take(out, i0, axis=axis), np.take(out, i1, axis=axis)
        out = a + (b - a) * lam
    return out


def gaussian_map(roi, sigma_scale: float = 0.125, mode: str = 'gaussian') -> np.ndarray:
    """MONAI's ``compute_importance_map``: a separable Gaussian, sigma = ``sigma_scale`` x window,
    floored at its minimum or 1e-3 (whichever is larger); ones for ``'constant'``."""
    if mode == 'constant':
        return np.ones(roi, np.float32)
    weight = None
    for i, n in enumerate(roi):
        x = np.arange(-(n - 1) / 2.0, (n - 1) / 2.0 + 1, dtype=np.float32)
        x = np.exp(x**2 / np.float32(-2 * (n * sigma_scale)**2))
        weight = x if weight is None else weight[..., None] * x.reshape((1, ) * i + (n, ))
    return np.maximum(weight, max(float(weight.min()), 1e-3)).astype(np.float32)


def window_starts(size: int, roi: int, overlap: float) -> list:
    """MONAI's window positions along one axis: ``int(roi * (1 - overlap))`` apart (the whole axis
    when it is the window's size), the last one flush with the border."""
    interval = roi if roi == size else max(int(roi * (1 - overlap)), 1)
    count = next((d + 1 for d in range(math.ceil(size / interval)) if d * interval + roi >= size), 1)
    return [i * interval - max(i * interval + roi - size, 0) for i in range(count)]


def sliding_window(image: np.ndarray, run, roi, overlap: float, sigma_scale: float, mode: str,
                   flip_axes=()) -> np.ndarray:
    """Gaussian-blended logits ``(K, D, H, W)`` of ``image`` ``(C, D, H, W)``; ``run`` maps a
    window ``(1, C, *roi)`` to its logits. Inputs smaller than the window are zero-padded on both
    sides and cropped back; ``flip_axes``: mirroring TTA, sets of window dims (2-4), each averaged
    with the unflipped pass."""
    size = image.shape[1:]
    pad = [(max(r - s, 0) // 2, max(r - s, 0) - max(r - s, 0) // 2) for r, s in zip(roi, size)]
    if any(a or b for a, b in pad):
        image = np.pad(image, [(0, 0)] + pad)
    weight = gaussian_map(roi, sigma_scale, mode)
    flips = [tuple(int(a) for a in f) for f in flip_axes]
    out = weights = None
    for d in window_starts(image.shape[1], roi[0], overlap):
        for h in window_starts(image.shape[2], roi[1], overlap):
            for w in window_starts(image.shape[3], roi[2], overlap):
                box = (slice(d, d + roi[0]), slice(h, h + roi[1]), slice(w, w + roi[2]))
                window = np.ascontiguousarray(image[(slice(None), ) + box][None])
                logits = run(window)[0]
                for dims in flips:  # averaged with the unflipped pass, as densedet's window predictor
                    flipped = run(np.ascontiguousarray(np.flip(window, dims)))[0]
                    logits = logits + np.flip(flipped, tuple(d - 1 for d in dims))
                if flips:
                    logits = logits / (1 + len(flips))
                if out is None:
                    out = np.zeros((logits.shape[0], ) + image.shape[1:], np.float32)
                    weights = np.zeros(image.shape[1:], np.float32)
                out[(slice(None), ) + box] += logits * weight
                weights[box] += weight
    out /= weights
    crop = tuple(slice(a, a + s) for (a, _), s in zip(pad, size))
    return out[(slice(None), ) + crop]


def read_case(paths):
    """``(image (C, D, H, W) float32, spacing (D, H, W), affine, header)`` of a case's channel files,
    as densedet's ``LoadVolumeFromFile`` reads them (file axes i, j, k -> W, H, D)."""
    channels, first = [], None
    for path in paths:
        img = nib.load(path)
        data = np.asarray(img.dataobj, dtype=np.float32)
        if data.ndim == 4 and data.shape[3] == 1:
            data = data[..., 0]
        if data.ndim != 3:
            raise ValueError(f'{path} has shape {data.shape}; expected a 3D volume per channel file')
        channels.append(np.ascontiguousarray(data.transpose(2, 1, 0)))
        first = first or img
    spacing = tuple(float(z) for z in first.header.get_zooms()[:3][::-1])
    return np.stack(channels), spacing, first.affine.copy(), first.header.copy()


def check_grid(path, spacing, affine, axes) -> None:
    """densedet's ``ResampleSpacing`` checks: a positive finite spacing, and (plans ``axes``) the
    training cases' slice direction."""
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f'spacing {tuple(spacing)} mm of {path} is not positive and finite (a broken pixdim in its '
                         'header)')
    pairs = {'L': 'LR', 'R': 'LR', 'A': 'AP', 'P': 'AP', 'S': 'SI', 'I': 'SI'}
    own = [pairs[c] for c in nib.aff2axcodes(affine)[::-1]]
    if axes and own != list(axes):
        raise ValueError(f"the voxel axes (D, H, W) of {path} run along {own}, the training cases' along {list(axes)}: "
                         "another slice direction than the network learnt; reorient the file to the training data's "
                         'axes first')


def _plans_normalization():
    """densedet/transforms/plans_normalization.py (numpy only), loaded by its path: importing the
    densedet package would import torch."""
    import importlib.util
    path = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'densedet', 'transforms',
                    'plans_normalization.py')
    spec = importlib.util.spec_from_file_location('densedet_plans_normalization', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def apply_intensity(image: np.ndarray, step: dict) -> np.ndarray:
    kind = step['type']
    if kind == 'NormalizeFromPlans':
        if len(step['schemes']) != image.shape[0]:
            raise ValueError(f'{image.shape[0]} channel(s), the plans normalise {len(step["schemes"])}')
        return _plans_normalization().normalize_from_plans(image, step['schemes'])
    if kind == 'IntensityWindow':
        (low, high), (a, b) = step['window'], step['out_range']
        return ((np.clip(image, low, high) - low) * ((b - a) / (high - low)) + a).astype(np.float32)
    if kind == 'ZScoreNormalize':
        mean = np.asarray(step['mean'], np.float32).reshape(-1, 1, 1, 1) if step.get('mean') is not None else \
            image.mean((1, 2, 3), keepdims=True)
        std = np.asarray(step['std'], np.float32).reshape(-1, 1, 1, 1) if step.get('std') is not None else \
            image.std((1, 2, 3), keepdims=True)
        return (image - mean) / np.maximum(std, 1e-8)
    raise ValueError(f'unknown pipeline step {kind!r}')


def predict_case(paths, run, meta: dict) -> tuple:
    """Labels ``(D, H, W)`` (the dataset's label values) of one case, and its affine and header."""
    image, spacing, affine, header = read_case(paths)
    ori_shape = image.shape[1:]
    for step in meta['pipeline']:
        if step['type'] == 'ResampleSpacing':
            check_grid(paths[0], spacing, affine, step.get('axes'))
            target = [o if n is None else float(n) for o, n in zip(spacing, step['spacing'])]
            shape = tuple(max(1, int(round(s * o / n))) for s, o, n in zip(image.shape[1:], spacing, target))
            if shape != image.shape[1:]:
                image = linear_resize(image, shape)
            spacing = tuple(o * s / n for o, s, n in zip(spacing, ori_shape, shape))
        else:
            image = apply_intensity(image, step)
    shape = image.shape[1:]
    roi = meta['roi_size']
    if not roi:  # one window, the whole case: padded to the network's stride (windows need no padding)
        roi = [-(-s // d) * d for s, d in zip(shape, meta['size_divisor'])]
        image = np.pad(image, [(0, 0)] + [(0, p - s) for s, p in zip(shape, roi)], constant_values=0)
    logits = sliding_window(image, run, roi, meta['overlap'], meta['sigma_scale'], meta['blend'],
                            meta.get('flip_axes') or ())
    logits = linear_resize(logits[(slice(None), ) + tuple(slice(0, s) for s in shape)], ori_shape)
    if meta.get('regions'):
        labels = np.zeros(ori_shape, np.int64)
        for k, region in enumerate(meta['regions']):
            labels[logits[k] > 0] = int(region['order'])  # sigmoid > 0.5
    else:
        labels = logits.argmax(0)
    if meta.get('label_values') is not None:
        labels = np.asarray(meta['label_values'])[labels]
    return labels, affine, header


def write_labels(labels: np.ndarray, path: str, affine, header) -> None:
    """NIfTI with the input's affine and q/s-form codes (as densedet's ``write_nifti``), atomically."""
    dtype = np.uint8 if labels.min(initial=0) >= 0 and labels.max(initial=0) < 256 else np.int16
    img = nib.Nifti1Image(labels.transpose(2, 1, 0).astype(dtype), affine, header=header.copy())
    img.set_data_dtype(dtype)
    img.set_qform(affine, code=int(header['qform_code']) or 1)
    img.set_sform(affine, code=int(header['sform_code']) or 1)
    img.header['scl_slope'], img.header['scl_inter'] = 1, 0
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix='.nii.gz' if path.endswith('.nii.gz') else '.nii', dir=directory)
    os.close(fd)
    try:
        nib.save(img, tmp)
        os.replace(tmp, path)
    except BaseException:
        os.remove(tmp)
        raise
