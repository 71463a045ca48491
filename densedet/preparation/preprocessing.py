"""Volumes preprocessed once, read as memory-mapped patches (the nnU-Net-class data path).

    python tools/data/plan_volumes.py CONFIG          # fingerprint -> plans.json + splits.json
    python tools/data/preprocess_volumes.py CONFIG    # every labelled case -> out_dir/cases/

A config's ``preprocess`` block says what to do::

    preprocess = dict(
        dataset=dict(type='MSDDataset', data_root='data/Task03_Liver'),   # the raw labelled cases
        pipeline=[LoadVolumeFromFile, CropToNonzero, NormalizeFromPlans, ResampleSpacing],  # deterministic
        out_dir='data/Task03_Liver_preprocessed', plans_file=..., divisor=(16, 16, 16), memory_gb=8)

Each case is run through ``pipeline`` once and stored in ``out_dir/cases/`` as ``{case}_img.npy``
(float32, ``(C, D, H, W)``), ``{case}_seg.npy`` (uint8 class indices), ``{case}_fg.npz`` (sampled
voxel locations per foreground class, for oversampling) and ``{case}.json`` (the geometry: stored
and original shape / spacing / affine, the non-zero box; the raw files' size and mtime; a stamp of
the pipeline and plans). The JSON is written last and every file atomically, so a case whose JSON
exists is complete; a rerun skips those, redoes cases whose raw files, pipeline or plans changed
(saying so), and finishes cases a killed run left half-written.

The stored layout and its dataset: :mod:`densedet.datasets.preprocessed`.
"""
import hashlib
import json
import os.path as osp
import time
import zlib
from typing import Callable, Optional, Sequence

import numpy as np

from densedet.datasets.preprocessed import case_paths, case_sources, source_stat
from densedet.fileio import atomic_write, load_plans, write_json

from .jobs import parse_shard, raw_cases, run_cases

LOCATION_SAMPLES = 10000  # foreground voxels stored per class (at least 1 % of them when more)


def pipeline_stamp(pipeline: Sequence[dict]) -> str:
    """Hash of the preprocessing transforms and of the plans files they read."""
    digest = hashlib.sha256(json.dumps(pipeline, sort_keys=True, default=str).encode())
    for step in pipeline:
        if step.get('plans_file'):
            with open(step['plans_file'], 'rb') as f:
                digest.update(f.read())
    return digest.hexdigest()[:16]


def foreground_locations(seg: np.ndarray, num_classes: int, seed: int) -> dict:
    """Per class 1..K-1: ``(n, 3)`` int32 voxel coordinates, a seeded sample of the class's voxels."""
    rng = np.random.RandomState(seed)
    out = {}
    flat = seg.ravel()
    for c in range(1, num_classes):
        voxels = np.flatnonzero(flat == c)
        keep = min(len(voxels), max(LOCATION_SAMPLES, int(np.ceil(0.01 * len(voxels)))))
        if keep < len(voxels):
            voxels = np.sort(rng.choice(voxels, keep, replace=False))
        out[f'class_{c}'] = np.stack(np.unravel_index(voxels, seg.shape), axis=1).astype(np.int32)
    return out


def case_status(item: dict, out_dir: str, stamp: str) -> Optional[str]:
    """``None`` when the stored case is complete and current, else why it must be (re)done."""
    paths = case_paths(out_dir, item['case_id'])
    if not osp.isfile(paths['properties']):
        return 'new' if not any(osp.exists(p) for p in paths.values()) else 'left half-written by an earlier run'
    with open(paths['properties']) as f:
        props = json.load(f)
    missing = [osp.basename(p) for p in paths.values() if not osp.isfile(p)]
    if missing:
        return f'stored file(s) missing: {", ".join(missing)}'
    if props.get('stamp') != stamp:
        return 'the preprocessing pipeline or the plans changed'
    changed = [old[0] for old, new in zip(props['sources'], source_stat(case_sources(item))) if old != new]
    if changed or len(props['sources']) != len(case_sources(item)):
        return f'raw file(s) changed since preprocessing (size / mtime): {", ".join(changed)}'
    return None


def label_kinds(metainfo: dict) -> dict:
    """The task's ignore label and regions in label values (as a dataset.json declares them)."""
    values = list(metainfo['label_values'])
    regions = metainfo.get('regions') or []
    return dict(ignore_value=metainfo.get('ignore_value'),
                regions={r['name']: [values[i] for i in r['labels']] for r in regions} or None,
                regions_class_order=[values[r['order']] for r in regions] or None)


def preprocess_case(item: dict, pipeline: Sequence[dict], out_dir: str, stamp: str) -> dict:
    """Runs ``pipeline`` on one raw case and stores it (atomic files, properties last)."""
    from mmengine.dataset import Compose
    start = time.perf_counter()
    results = Compose(pipeline)(dict(item))
    paths = case_paths(out_dir, item['case_id'])
    img = np.ascontiguousarray(results['img'], dtype=np.float32)
    atomic_write(paths['img'], lambda f: np.save(f, img))
    seg = np.ascontiguousarray(results['gt_seg'], dtype=np.uint8)
    atomic_write(paths['seg'], lambda f: np.save(f, seg))
    locations = foreground_locations(seg, len(item['label_values']), zlib.crc32(item['case_id'].encode()))
    atomic_write(paths['locations'], lambda f: np.savez(f, **locations))
    props = dict(case_id=item['case_id'], stamp=stamp, sources=source_stat(case_sources(item)),
                 shape=list(seg.shape), spacing=list(results['spacing']),
                 affine=np.asarray(results['affine']).tolist(), ori_shape=list(results['ori_shape']),
                 ori_spacing=list(results['ori_spacing']), ori_affine=np.asarray(results['ori_affine']).tolist(),
                 nonzero_bbox=results.get('nonzero_bbox'),
                 voxels_per_class=[int(n) for n in np.bincount(seg.ravel(), minlength=len(item['label_values']))])
    write_json(props, paths['properties'])  # last: the case is complete (no timings: reruns give the same files)
    return dict(props, seconds=time.perf_counter() - start)


class _CaseJob:

    def __init__(self, pipeline, out_dir, stamp):
        self.pipeline, self.out_dir, self.stamp = pipeline, out_dir, stamp

    def __call__(self, item):
        return preprocess_case(item, self.pipeline, self.out_dir, self.stamp)


def preprocess_dataset(preprocess_cfg: dict, workers: int = 1, shard: Optional[str] = None,
                       log: Callable = print) -> dict:
    """Preprocesses the labelled cases of ``preprocess_cfg['dataset']`` (this shard's share) into
    ``preprocess_cfg['out_dir']``; returns counts (``done``, ``skipped``, ``seconds``)."""
    out_dir, pipeline = preprocess_cfg['out_dir'], [dict(t) for t in preprocess_cfg['pipeline']]
    for step in pipeline:
        if step.get('plans_file'):
            load_plans(step['plans_file'])  # a missing plan fails here, before any worker starts
    stamp = pipeline_stamp(pipeline)
    items, metainfo = raw_cases(preprocess_cfg['dataset'])
    index, count = parse_shard(shard)
    items = items[index::count]
    write_json(dict(classes=list(metainfo['classes']), label_values=list(metainfo['label_values']),
                    modalities=list(metainfo['modalities']), stamp=stamp, **label_kinds(metainfo)),
               osp.join(out_dir, 'dataset.json'))
    todo = []
    for item in items:
        reason = case_status(item, out_dir, stamp)
        if reason is not None:
            if reason != 'new':
                log(f'{item["case_id"]}: {reason}; preprocessing it again')
            todo.append(item)
    log(f'{len(todo)} of {len(items)} case(s) to preprocess into {out_dir}'
        + (f' (shard {index}/{count})' if count > 1 else ''))
    seconds = [p['seconds'] for p in run_cases(_CaseJob(pipeline, out_dir, stamp), todo, workers, log)]
    return dict(done=len(todo), skipped=len(items) - len(todo), seconds=seconds)
