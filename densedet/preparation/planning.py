"""Dataset fingerprint, plans and cross-validation splits of a volume task (nnU-Net's idea, own code).

    from densedet.preparation import plan_from_config
    plans = plan_from_config('configs/demo/denseunet3d_msd-liver_demo.py')   # writes plans.json

**Fingerprint** (one pass over the labelled cases, :func:`fingerprint_case`): shape and spacing,
the shape of the non-zero region, and per channel a seeded sample of the intensities under the
label's foreground (what CT normalisation is computed from).

**Plans** (:func:`make_plans`):

- target spacing: the median spacing per axis; for strongly anisotropic data (the coarsest axis
  more than 3x the finest of the others, and its median size in voxels less than a third of theirs)
  that axis gets the 10th percentile of its spacings instead (nnU-Net's rule: resampling the thick
  slices to the median would blur through the slices of the thinner-sliced cases);
- normalisation per channel: CT (the modality name says so): clip to the 0.5 / 99.5 percentiles of
  the foreground intensities of all cases, then z-score with their mean / std; any other modality:
  z-score with the case's own statistics;
- the median shape after resampling, and a patch size: the median shape rounded up to the network's
  divisor, shrunk one divisor step at a time along the axis of largest physical extent until the
  network's activations for a training batch fit ``memory_gb`` (activations measured on the
  configured network, :func:`activation_bytes_per_voxel`).

Plans are JSON; the transforms :class:`~densedet.transforms.NormalizeFromPlans` and
:class:`~densedet.transforms.ResampleSpacing` (``plans_file=``) read them, so a config points at a
plans file instead of hard-coding spacing / window (hand-written values stay possible).

**Splits** (:func:`make_splits`): 5 folds over the sorted case ids, shuffled with a fixed seed, as
``[{"train": [...], "val": [...]}, ...]``; datasets select one with ``splits_file`` + ``fold``.
"""
import os.path as osp
import zlib
from typing import Dict, List, Optional, Sequence

import numpy as np

from densedet.errors import BadDataError
from densedet.fileio import voxel_axes, write_json
from densedet.transforms import LoadVolumeFromFile, nonzero_bbox

from .jobs import raw_cases, run_cases

ANISOTROPY_THRESHOLD = 3
FOREGROUND_SAMPLES = 10000  # intensities kept per case and channel (nnU-Net keeps 10k too)
PLANS_VERSION = 1


def fingerprint_case(results: dict, seed: int) -> dict:
    """Fingerprint of one loaded case (the output of ``LoadVolumeFromFile``)."""
    img, seg = results['img'], results.get('gt_seg')
    box = nonzero_bbox(img)
    rng = np.random.RandomState(seed)
    intensities = []
    for channel in img:
        values = channel[seg > 0] if seg is not None else channel.ravel()
        if len(values) > FOREGROUND_SAMPLES:
            values = values[rng.choice(len(values), FOREGROUND_SAMPLES, replace=False)]
        intensities.append(values.astype(np.float64))
    return dict(case_id=results['case_id'], shape=list(img.shape[1:]), spacing=list(results['spacing']),
                nonzero_shape=[b - a for a, b in box], axes=voxel_axes(results['affine']),
                foreground=[dict(count=int(v.size), mean=float(v.mean()) if v.size else 0.0,
                                 samples=v.tolist()) for v in intensities])


def target_spacing(spacings: np.ndarray, shapes: np.ndarray) -> List[float]:
    """Median spacing per axis, with the anisotropy rule (module docstring)."""
    target = np.median(spacings, axis=0)
    median_shape = np.median(shapes, axis=0)
    worst = int(np.argmax(target))
    others = [a for a in range(3) if a != worst]
    aniso_spacing = target[worst] > ANISOTROPY_THRESHOLD * max(target[others])
    aniso_voxels = median_shape[worst] * ANISOTROPY_THRESHOLD < min(median_shape[others])
    if aniso_spacing and aniso_voxels:
        lower = np.percentile(spacings[:, worst], 10)
        # never finer than the other axes
        target[worst] = lower if lower >= max(target[others]) else max(target[others]) + 1e-5
    return [float(t) for t in target]


def normalization_scheme(modality: str, samples: np.ndarray) -> dict:
    if modality.strip().upper() == 'CT':
        if samples.size == 0:
            raise BadDataError('CT normalisation needs labelled foreground voxels; no case has any')
        low, high = np.percentile(samples, (0.5, 99.5))
        return dict(scheme='CT', clip=[float(low), float(high)], mean=float(samples.mean()),
                    std=float(samples.std()))
    return dict(scheme='zscore')


def make_plans(fingerprints: Sequence[dict], modalities: Sequence[str], divisor: Sequence[int] = (16, 16, 16),
               bytes_per_voxel: Optional[float] = None, batch_size: int = 2, memory_gb: float = 8.0) -> dict:
    """Plans from case fingerprints (see the module docstring)."""
    if not fingerprints:
        raise BadDataError('no cases to plan from')
    spacings = np.array([f['spacing'] for f in fingerprints], np.float64)
    shapes = np.array([f['nonzero_shape'] for f in fingerprints], np.float64)
    target = target_spacing(spacings, shapes)
    resampled = np.median(shapes * spacings / np.asarray(target), axis=0)
    normalization = []
    for channel, modality in enumerate(modalities):
        samples = np.concatenate([np.asarray(f['foreground'][channel]['samples']) for f in fingerprints])
        normalization.append(dict(modality=modality, **normalization_scheme(modality, samples)))
    plans = dict(version=PLANS_VERSION, target_spacing=target, median_shape=[int(round(s)) for s in resampled],
                 normalization=normalization, divisor=list(divisor), batch_size=batch_size)
    if bytes_per_voxel is not None:
        plans.update(patch_size=fit_patch_size(resampled, target, divisor, bytes_per_voxel * batch_size,
                                               memory_gb * 2**30),
                     memory_gb=memory_gb, activation_bytes_per_voxel=bytes_per_voxel)
    axes = {tuple(f['axes']) for f in fingerprints if 'axes' in f}
    if len(axes) == 1:  # one slice direction in training: prediction checks that a case has it too
        plans['axes'] = list(axes.pop())
    plans['cases'] = {f['case_id']: dict(shape=f['shape'], spacing=f['spacing'], nonzero_shape=f['nonzero_shape'])
                      for f in fingerprints}
    return plans


def fit_patch_size(median_shape, spacing, divisor, bytes_per_voxel: float, budget: float) -> List[int]:
    """The median shape rounded up to ``divisor``, shrunk along the axis of largest physical extent
    (one divisor step at a time) until ``voxels * bytes_per_voxel <= budget``."""
    patch = [int(-(-max(s, 1) // d) * d) for s, d in zip(median_shape, divisor)]
    while np.prod(patch) * bytes_per_voxel > budget:
        shrinkable = [a for a in range(3) if patch[a] > divisor[a]]
        if not shrinkable:
            break
        axis = max(shrinkable, key=lambda a: patch[a] * spacing[a])
        patch[axis] -= divisor[axis]
    return patch


def activation_bytes_per_voxel(model_cfg: dict, in_channels: int, probe: Sequence[int] = (32, 32, 32),
                               scope: str = 'mmseg') -> float:
    """Bytes the network keeps for backward per input voxel: float32 outputs of every leaf module
    in one training forward of a ``probe``-sized input (activations grow linearly with the voxels).
    Built in the registry ``scope`` (the config's ``default_scope``), whatever scope is current."""
    import torch
    from mmengine.registry import DefaultScope

    from densedet.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(model_cfg)
    model.train()
    total = [0]

    def count(module, inputs, output):
        for t in (output if isinstance(output, (tuple, list)) else [output]):
            if isinstance(t, torch.Tensor):
                total[0] += t.numel() * t.element_size()

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        x = torch.zeros(1, in_channels, *probe)
        model.forward_logits(x) if hasattr(model, 'forward_logits') else model(x)
    finally:
        for h in hooks:
            h.remove()
    return total[0] / float(np.prod(probe))


def make_splits(case_ids: Sequence[str], folds: int = 5, seed: int = 12345) -> List[Dict[str, List[str]]]:
    """``folds`` train / val splits of the case ids (each case validates in exactly one fold)."""
    ids = sorted(case_ids)
    if len(ids) < folds:
        raise BadDataError(f'{folds}-fold splits need at least {folds} cases, got {len(ids)}')
    order = np.random.RandomState(seed).permutation(len(ids))
    parts = np.array_split(order, folds)
    return [dict(train=sorted(ids[i] for p in parts[:k] + parts[k + 1:] for i in p),
                 val=sorted(ids[i] for i in parts[k])) for k in range(folds)]


class _FingerprintJob:

    def __call__(self, item: dict) -> dict:
        return fingerprint_case(LoadVolumeFromFile()(dict(item)), seed=zlib.crc32(item['case_id'].encode()))


def plan_from_config(cfg, workers: int = 1, memory_gb: Optional[float] = None, log=print, network: bool = True) -> dict:
    """Fingerprints the config's ``preprocess.dataset``, writes ``preprocess.plans_file`` and a
    ``splits.json`` beside it (5 folds; fewer for tasks of under 5 cases); returns the plans. The
    patch size is fitted to the config's network
    (``model``; its total stride ``preprocess.divisor``, default the data preprocessor's
    ``size_divisor``), training batch size and ``preprocess.memory_gb`` (or ``memory_gb``);
    ``network=False`` plans without a patch size (no network is built)."""
    pre = cfg['preprocess']
    items, metainfo = raw_cases(pre['dataset'])
    fingerprints = sorted(run_cases(_FingerprintJob(), items, workers, log), key=lambda f: f['case_id'])
    modalities = list(metainfo['modalities'])
    model_cfg = cfg.get('model') or {}
    in_channels = model_cfg.get('backbone', {}).get('in_channels', len(modalities))
    bytes_per_voxel = (activation_bytes_per_voxel(model_cfg, in_channels, scope=cfg.get('default_scope', 'mmseg'))
                       if network else None)
    batch_size = cfg.get('train_dataloader', {}).get('batch_size', 2)
    # the network's total stride: its data preprocessor pads inputs to it
    divisor = pre.get('divisor') or model_cfg.get('data_preprocessor', {}).get('size_divisor') or 16
    divisor = tuple(divisor) if isinstance(divisor, (tuple, list)) else (int(divisor), ) * 3
    plans = make_plans(fingerprints, modalities, divisor=divisor,
                       bytes_per_voxel=bytes_per_voxel, batch_size=batch_size,
                       memory_gb=memory_gb or pre.get('memory_gb', 8.0))
    plans['dataset'] = dict(pre['dataset'])
    write_json(plans, pre['plans_file'])
    ids = [f['case_id'] for f in fingerprints]
    if len(ids) >= 2:  # 5 folds, or one per case for tiny tasks
        write_json(make_splits(ids, folds=min(5, len(ids))), osp.join(osp.dirname(pre['plans_file']), 'splits.json'))
    else:
        log('one case: no cross-validation splits written')
    return plans
