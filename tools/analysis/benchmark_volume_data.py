"""The volume data path at real size: today's NIfTI pipeline, densedet's preprocessed path and
nnU-Net v2's own, side by side in one run (``benchmark.py --volume-data``).

    python tools/analysis/benchmark.py --volume-data [--size 512 --depth 300] [--cases 2] [--samples 8]
        [--patch 48 160 160] [--nnunet-python .venv-nnunet/bin/python]

Cases: ``--cases`` synthetic CT volumes of ``size x size x depth`` int16 voxels (air, body, a
liver-like ellipsoid with tumours; 0.7-0.9 mm in plane, 1.5-2.5 mm slices, so planning resamples),
written once as ``.nii.gz`` in nnU-Net v2's raw layout (``Dataset501_BenchLiver``), which both
densedet (``NnUNetDataset``) and nnU-Net read.

(a) ``nifti``: the training pipeline of ``configs/_base_/datasets/msd_liver.py`` as it is (load the
    ``.nii.gz``, HU window, resample to 2.5 x 0.8 x 0.8 mm, a ``--patch`` crop with 1/3 foreground
    oversampling, flips, rot90, pack), one sample at a time;
(b) ``preprocessed``: plan + preprocess with densedet's tools (crop to non-zero, CT normalisation
    from the plans, resample to the plans' spacing, ``.npy``), then ``LoadPreprocessedPatch``
    (``--patch``, fg 1/3) + flips + rot90 + pack, one sample at a time; and ``preprocessed-load``,
    the patch alone (+ pack), which is what (c) measures;
(c) ``nnunet``: nnU-Net v2 (``--nnunet-python``: tools/analysis/setup_nnunet_venv.sh makes it) plans
    and preprocesses the same raw files (``3d_fullres``, its default blosc2 storage), and its
    ``nnUNetDataLoader`` draws batches of 2 ``--patch`` patches with foreground 1/3 and no
    augmentation; per-sample time = batch time / 2.

Per-sample time: median over ``--samples`` samples after one warm-up; peak RSS: the rise of the
process's peak RSS over what it held before sampling, each path in a fresh process. Preprocessing:
seconds per case, one process each (densedet ``--workers 1``, nnU-Net ``-np 1``).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time

import numpy as np
from bench_common import subprocess_result

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

DATASET = 'Dataset501_BenchLiver'


def _memory_kib(key: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process (getrusage's maxrss survives exec: a child would
    report its parent's peak)."""
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ':'))


def _reset_peak() -> int:
    """Resets the peak RSS to the current RSS (Linux clear_refs); returns the current RSS."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    return _memory_kib('VmRSS')


def make_case(rng, size: int, depth: int):
    """A CT-like int16 volume ``(depth, size, size)``, its uint8 label and spacing (D, H, W)."""
    spacing = (float(rng.uniform(1.5, 2.5)), float(rng.uniform(0.7, 0.9)))
    spacing = (spacing[0], spacing[1], spacing[1])
    z, y, x = np.ogrid[:depth, :size, :size]
    body = ((y - size / 2) / (0.42 * size))**2 + ((x - size / 2) / (0.46 * size))**2 <= 1
    img = np.full((depth, size, size), -1000, np.int16)
    img[:, body[0]] = 40
    cz, cy, cx = depth * rng.uniform(0.4, 0.6), size * rng.uniform(0.4, 0.5), size * rng.uniform(0.35, 0.45)
    rz, ry, rx = depth * 0.3, size * 0.18, size * 0.2
    liver = ((z - cz) / rz)**2 + ((y - cy) / ry)**2 + ((x - cx) / rx)**2 <= 1
    label = liver.astype(np.uint8)
    for _ in range(3):
        tz, ty, tx = cz + rng.uniform(-0.5, 0.5) * rz, cy + rng.uniform(-0.5, 0.5) * ry, cx + rng.uniform(-.5, .5) * rx
        r = rng.uniform(8, 20)
        tumour = ((z - tz) * spacing[0] / r)**2 + ((y - ty) * spacing[1] / r)**2 + ((x - tx) * spacing[2] / r)**2 <= 1
        label[tumour & liver] = 2
    img[label == 1] = 110
    img[label == 2] = 35
    img += rng.normal(0, 12, img.shape).astype(np.int16)
    return img, label, spacing


def write_raw(root: str, cases: int, size: int, depth: int, seed: int = 0) -> str:
    """nnU-Net v2 raw layout under ``root/DATASET`` (reused when already complete)."""
    from densedet.fileio import write_nifti
    task = osp.join(root, DATASET)
    if osp.isfile(osp.join(task, 'dataset.json')):
        return task
    rng = np.random.default_rng(seed)
    for i in range(cases):
        img, label, spacing = make_case(rng, size, depth)
        affine = np.diag(list(spacing[::-1]) + [1.0])
        write_nifti(img, osp.join(task, 'imagesTr', f'liver_{i:03d}_0000.nii.gz'), affine, dtype=np.int16)
        write_nifti(label, osp.join(task, 'labelsTr', f'liver_{i:03d}.nii.gz'), affine)
        print(f'wrote case {i + 1}/{cases} ({depth}x{size}x{size}, spacing {spacing})', file=sys.stderr, flush=True)
    with open(osp.join(task, 'dataset.json'), 'w') as f:
        json.dump(dict(channel_names={'0': 'CT'}, labels=dict(background=0, liver=1, tumour=2), numTraining=cases,
                       file_ending='.nii.gz'), f)
    return task


def _densedet_cfg(task: str, work: str) -> dict:
    plans_file = osp.join(work, 'densedet_pre', 'plans.json')
    return dict(
        dataset=dict(type='NnUNetDataset', data_root=task),
        pipeline=[dict(type='LoadVolumeFromFile'), dict(type='CropToNonzero'),
                  dict(type='NormalizeFromPlans', plans_file=plans_file),
                  dict(type='ResampleSpacing', plans_file=plans_file)],
        out_dir=osp.join(work, 'densedet_pre'), plans_file=plans_file)


def sample_worker(path: str, task: str, work: str, patch, samples: int) -> dict:
    """Times ``samples`` training samples of one densedet path in this process."""
    from mmengine.dataset import Compose
    from mmengine.registry import DATASETS

    import densedet  # noqa: F401
    augment = [dict(type='RandomFlip3D', prob=0.5, axes=(0, 1, 2)), dict(type='RandomRot90', prob=0.5, axes=(1, 2)),
               dict(type='PackVolumeInputs')]
    load_only = path == 'preprocessed-load'  # no flips / rot90: what nnU-Net's loader does here
    if path == 'nifti':
        from mmengine.config import Config
        base = Config.fromfile(osp.join(ROOT, 'configs/_base_/datasets/msd_liver.py'))
        steps = [dict(t) for t in base.train_pipeline]
        for t in steps:
            if t['type'] == 'RandomPatchCrop':
                t['patch_size'] = tuple(patch)
        dataset = DATASETS.build(dict(type='NnUNetDataset', data_root=task, pipeline=[]))
    else:
        steps = [dict(type='LoadPreprocessedPatch', patch_size=tuple(patch), fg_ratio=1 / 3)]
        steps += augment[-1:] if load_only else augment
        dataset = DATASETS.build(dict(type='PreprocessedVolumeDataset', data_root=osp.join(work, 'densedet_pre'),
                                      pipeline=[]))
    pipeline = Compose(steps)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    np.random.seed(0)
    pipeline(dict(infos[0]))  # warm-up
    before = _reset_peak()
    times = []
    for k in range(samples):
        t = time.perf_counter()
        out = pipeline(dict(infos[k % len(infos)]))
        times.append(time.perf_counter() - t)
    assert tuple(out['inputs'].shape[1:]) == tuple(patch)
    peak = _memory_kib('VmHWM')
    return dict(per_sample_s=statistics.median(times), peak_rise_mib=(peak - before) / 1024, peak_mib=peak / 1024)


NNUNET_SCRIPT = r'''
import json, os, statistics, sys, time


def memory_kib(key):
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ':'))


def main():
    work, patch, samples = sys.argv[1], [int(p) for p in sys.argv[2].split(',')], int(sys.argv[3])
    for key in ('raw', 'preprocessed', 'results'):
        os.environ['nnUNet_' + key] = os.path.join(work, 'nnunet_' + key)
    mode = sys.argv[4]
    if mode == 'preprocess':
        from nnunetv2.experiment_planning.plan_and_preprocess_api import (extract_fingerprints, plan_experiments,
                                                                          preprocess)
        t = time.perf_counter()
        extract_fingerprints([501], num_processes=1, check_dataset_integrity=False, clean=True, verbose=False)
        plan_experiments([501])
        planned = time.perf_counter()
        preprocess([501], configurations=('3d_fullres', ), num_processes=(1, ), verbose=False)
        done = time.perf_counter()
        print('RESULT ' + json.dumps(dict(fingerprint_plan_s=planned - t, preprocess_s=done - planned)))
        return
    import numpy as np
    from batchgenerators.utilities.file_and_folder_operations import join, load_json
    from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
    from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    folder = join(os.environ['nnUNet_preprocessed'], 'Dataset501_BenchLiver')
    plans = PlansManager(join(folder, 'nnUNetPlans.json'))
    config = plans.get_configuration('3d_fullres')
    data_folder = join(folder, config.data_identifier)
    dataset_class = infer_dataset_class(data_folder)
    dataset = dataset_class(data_folder)
    label_manager = plans.get_label_manager(load_json(join(folder, 'dataset.json')))
    loader = nnUNetDataLoader(dataset, 2, patch, patch, label_manager, oversample_foreground_percent=0.33,
                              transforms=None)
    np.random.seed(0)
    next(loader)  # warm-up
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    before = memory_kib('VmRSS')
    times = []
    for _ in range(max(1, samples // 2)):
        t = time.perf_counter()
        batch = next(loader)
        times.append((time.perf_counter() - t) / 2)
    assert tuple(batch['data'].shape[2:]) == tuple(patch), batch['data'].shape
    peak = memory_kib('VmHWM')
    print('RESULT ' + json.dumps(dict(per_sample_s=statistics.median(times), peak_rise_mib=(peak - before) / 1024,
                                      peak_mib=peak / 1024, planned_patch=list(config.patch_size),
                                      spacing=list(config.spacing), storage=dataset_class.__name__)))


if __name__ == '__main__':  # nnU-Net's workers are spawned: they import this file
    main()
'''


def run(args) -> dict:
    work = osp.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    task = write_raw(osp.join(work, 'nnunet_raw'), args.cases, args.size, args.depth)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    report = dict(cases=args.cases, shape=[args.depth, args.size, args.size], patch=list(args.patch))

    # (b) densedet: plan + preprocess (one process), timed per case
    import shutil

    from densedet.preparation import plan_from_config, preprocess_dataset
    shutil.rmtree(osp.join(work, 'densedet_pre'), ignore_errors=True)
    pre = _densedet_cfg(task, work)
    t = time.perf_counter()
    plans = plan_from_config(dict(preprocess=pre, model=dict(type='VolumeEncoderDecoder')), log=lambda *a: None,
                             network=False)
    planned = time.perf_counter()
    stats = preprocess_dataset(pre, workers=1, log=lambda *a: None)
    done = time.perf_counter()
    # wall time / cases, as for nnU-Net (whose per-case timings are not reported)
    report['densedet_preprocess'] = dict(fingerprint_plan_s=planned - t, preprocess_s=done - planned,
                                         per_case_s=(done - planned) / args.cases,
                                         median_case_s=statistics.median(stats['seconds']),
                                         spacing=plans['target_spacing'])

    # (a), (b): samples, each path in a fresh process
    for path in ('nifti', 'preprocessed', 'preprocessed-load'):
        cmd = [sys.executable, __file__, '--sample-worker', path, '--work-dir', work, '--samples', str(args.samples),
               '--patch', *map(str, args.patch)]
        report[path] = subprocess_result(cmd, env, f'{path} sampling')

    # (c) nnU-Net v2 in its own venv
    if args.nnunet_python:
        script = osp.join(work, 'nnunet_bench.py')
        with open(script, 'w') as f:
            f.write(NNUNET_SCRIPT)
        base = [args.nnunet_python, script, work, ','.join(map(str, args.patch)), str(args.samples)]
        for key in ('preprocessed', 'results'):
            shutil.rmtree(osp.join(work, 'nnunet_' + key), ignore_errors=True)
        nn_pre = subprocess_result(base + ['preprocess'], env, 'nnU-Net preprocessing')
        report['nnunet_preprocess'] = dict(nn_pre, per_case_s=nn_pre['preprocess_s'] / args.cases)
        report['nnunet'] = subprocess_result(base + ['sample'], env, 'nnU-Net data loader')
    return report


def print_report(r: dict) -> None:
    d, h, w = r['shape']
    print(f"\n{r['cases']} synthetic CT cases of {d}x{h}x{w} int16 (.nii.gz), patch {'x'.join(map(str, r['patch']))}, "
          'foreground oversampling 1/3; per sample: median after one warm-up; peak RSS: rise over the RSS after '
          'the warm-up while sampling, fresh process per path\n')
    print('| path | per training sample (s) | vs today | vs nnU-Net | peak RSS rise (MiB) |')
    print('|---|---|---|---|---|')
    base, nn = r['nifti']['per_sample_s'], r.get('nnunet', {}).get('per_sample_s')
    for key, name in (('nifti', 'today: NIfTI pipeline (msd_liver.py), with flips / rot90'),
                      ('preprocessed', 'densedet preprocessed, with flips / rot90'),
                      ('preprocessed-load', 'densedet preprocessed, patch only (no augmentation)'),
                      ('nnunet', "nnU-Net v2's loader, patch only (batch 2, per sample)")):
        if key not in r:
            continue
        s = r[key]['per_sample_s']
        vs_nn = f'{s / nn:.2f}x' if nn else '-'
        print(f"| {name} | {s:.4f} | {base / s:.0f}x faster | {vs_nn} | {r[key]['peak_rise_mib']:.0f} |")
    dp = r['densedet_preprocess']
    print('\n| preprocessing | fingerprint + plan (s) | per case (s) | vs nnU-Net |')
    print('|---|---|---|---|')
    nnp = r.get('nnunet_preprocess')
    ratio = f"{dp['per_case_s'] / nnp['per_case_s']:.2f}x" if nnp else '-'
    print(f"| densedet (1 process) | {dp['fingerprint_plan_s']:.2f} | {dp['per_case_s']:.2f} | {ratio} |")
    if nnp:
        print(f"| nnU-Net v2 (-np 1) | {nnp['fingerprint_plan_s']:.2f} | {nnp['per_case_s']:.2f} | 1.00x |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--depth', type=int, default=300)
    parser.add_argument('--cases', type=int, default=2)
    parser.add_argument('--samples', type=int, default=8)
    parser.add_argument('--patch', type=int, nargs=3, default=(48, 160, 160))
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--work-dir', default='work_dirs/bench_volume_data', help='cases are written once here')
    parser.add_argument('--nnunet-python', help='python of a venv with nnunetv2 (setup_nnunet_venv.sh)')
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument('--sample-worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sample_worker:
        task = osp.join(osp.abspath(args.work_dir), 'nnunet_raw', DATASET)
        result = sample_worker(args.sample_worker, task, osp.abspath(args.work_dir), args.patch, args.samples)
        print('RESULT ' + json.dumps(result))
        return result
    report = run(args)
    print_report(report)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == '__main__':
    main()
