"""Volume prediction at real size (``benchmark.py --volume-prediction``): peak memory and time of
sliding-window prediction to labels, densedet's bounded path against MONAI's
``sliding_window_inference`` (default and buffered) and nnU-Net v2's predictor, on one synthetic CT,
the same network, window and weights, for a few and for many classes.

    python tools/analysis/benchmark.py --volume-prediction [--shape 300 512 512] [--classes 3 117]
        [--roi 48 160 160] [--systems densedet monai monai-buffered nnunet] [--threads 2]
    python tools/analysis/benchmark.py --volume-prediction --settings CONFIG CKPT [--fold 0]
    python tools/analysis/benchmark.py --volume-prediction --onnx CONFIG CKPT [--fold 0]
    python tools/analysis/benchmark.py --volume-prediction --folds-table RECIPE TASK_DIR [--fold-subsets 0 0,1,2]

``--settings``: time against Dice of the prediction speed settings (overlap, mirroring axes,
``--amp``) for a trained volume config, on its validation cases (fold ``--fold`` of its splits),
all in one process (times are paired), predictions scored by the cross-validation's evaluator.
``--onnx``: the config exported with its plans (tools/deploy/export_onnx.py) and run through
tools/deploy/onnx_volume.py with onnxruntime, against densedet's PyTorch path on the same cases:
seconds per case both ways, identical voxels and Dice.
``--folds-table``: a cross-validated recipe (tools/find_best_configuration.py) with every fold and with
subsets of its folds (``infer_volume.py --recipe R --folds ...``) on labelled cases that no fold trained
on (an MSD task folder's ``imagesTr`` / ``labelsTr``, e.g. fresh cases of tools/data/make_demo_msd.py
with another seed): seconds per case (models loaded beforehand) and Dice.

Every run is a fresh process (``.venv-nnunet/bin/python`` for nnU-Net, its predictor's
``predict_sliding_window_return_logits`` + argmax, as its export does without resampling); peak
memory is the rise of the peak RSS over the process after the network and the volume exist. A run
whose known floor (MONAI: the float32 logits of the volume, nnU-Net: float16) does not fit in the
free memory is not started; its floor is reported instead. Labels are compared voxel for voxel with
MONAI's (the path densedet used before; equal blending) and with nnU-Net's (its own window
positions and float16 sums: agreement, not identity).
"""
import argparse
import json
import math
import os
import os.path as osp
import subprocess
import sys
import tempfile

import numpy as np
from bench_common import ROOT, write_report

WORKER = r'''
import json, resource, sys, time
import numpy as np
import torch
system, classes, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
shape, roi, out_path = tuple(json.loads(sys.argv[4])), tuple(json.loads(sys.argv[5])), sys.argv[6]
torch.set_num_threads(threads)
rng = np.random.default_rng(0)  # the same volume and weights in both virtual environments
net = torch.nn.Sequential(torch.nn.Conv3d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(16, classes, 1))
with torch.no_grad():
    for p in net.parameters():
        p.copy_(torch.from_numpy(rng.standard_normal(tuple(p.shape), dtype=np.float32) * 0.3))
net.eval()
volume = torch.from_numpy(rng.standard_normal((1, 1) + shape, dtype=np.float32))


def densedet_labels():
    from mmengine.registry import init_default_scope
    from densedet.models.segmentors import BaseVolumeSegmentor
    from densedet.structures import VolumeDataSample

    class Segmentor(BaseVolumeSegmentor):
        def forward_logits(self, x):
            return net(x)

    init_default_scope('mmseg')
    seg = Segmentor(test_cfg=dict(roi_size=roi, overlap=0.5, sw_batch_size=1, blend='gaussian'))
    return lambda v: seg.predict(v, [VolumeDataSample(metainfo=dict(img_shape=tuple(v.shape[2:])))])[0].pred_seg


def monai_labels(buffered):
    from monai.inferers import sliding_window_inference
    extra = dict(buffer_steps=1, buffer_dim=0) if buffered else {}
    return lambda v: sliding_window_inference(v, roi, 1, net, overlap=0.5, mode='gaussian', sigma_scale=0.125,
                                            **extra).argmax(1)[0]


def nnunet_labels():
    from types import SimpleNamespace
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False,
                                perform_everything_on_device=False, device=torch.device('cpu'), verbose=False,
                                allow_tqdm=False)
    predictor.network = net
    predictor.configuration_manager = SimpleNamespace(patch_size=list(roi))
    predictor.label_manager = SimpleNamespace(num_segmentation_heads=classes)
    predictor.allowed_mirroring_axes = None
    return lambda v: predictor.predict_sliding_window_return_logits(v[0]).argmax(0)


run = dict(densedet=densedet_labels, monai=lambda: monai_labels(False), nnunet=nnunet_labels,
           **{'monai-buffered': lambda: monai_labels(True)})[system]()
with torch.no_grad():  # warm-up on one window's worth: imports and first calls are not timed
    run(volume[(slice(None), slice(None)) + tuple(slice(0, r) for r in roi)])
with open('/proc/self/statm') as f:
    before = int(f.read().split()[1]) * resource.getpagesize()
start = time.perf_counter()
with torch.no_grad():
    labels = run(volume)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
np.save(out_path, labels.to(torch.uint8 if classes < 256 else torch.int16).numpy())
print('RESULT ' + json.dumps(dict(seconds=seconds, peak_gib=peak / 2**30)))
'''

SYSTEMS = ('densedet', 'monai', 'monai-buffered', 'nnunet')


def floor_gib(system: str, classes: int, shape, roi) -> float:
    """The memory a run cannot do without: the logits it keeps (the input excluded)."""
    voxels = math.prod(shape)
    if system == 'densedet':
        return classes * roi[0] * shape[1] * shape[2] * 4 / 2**30  # the ring buffer
    if system == 'nnunet':
        return (classes + 1) * voxels * 2 / 2**30  # float16 logits + counts
    return (classes + 1) * voxels * 4 / 2**30  # MONAI: float32 output + count map


def free_gib() -> float:
    with open('/proc/meminfo') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('MemAvailable:')) / 2**20


def run_one(args, system: str, classes: int, out_path: str) -> dict:
    python = args.nnunet_python if system == 'nnunet' else sys.executable
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=ROOT,
               nnUNet_raw='/nonexistent', nnUNet_preprocessed='/nonexistent', nnUNet_results='/nonexistent')
    cmd = [python, '-c', WORKER, system, str(classes), str(args.threads), json.dumps(args.shape), json.dumps(args.roi),
           out_path]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode in (-9, 137):  # SIGKILL: the kernel's OOM killer, on these machines
        return dict(error='killed by SIGKILL (the out-of-memory killer)')
    if out.returncode != 0 or 'RESULT ' not in out.stdout:
        return dict(error=(out.stderr.strip().splitlines() or [f'exit {out.returncode}'])[-1])
    return json.loads(out.stdout.split('RESULT ', 1)[1].splitlines()[0])


SETTINGS = [  # (label, overlap, mirror axes, amp)
    ('overlap 0.5, mirror D+H+W (7 flips)', 0.5, [0, 1, 2], False),
    ('overlap 0.5, mirror H+W (3 flips)', 0.5, [1, 2], False),
    ('overlap 0.5, no mirroring', 0.5, [], False),
    ('overlap 0.25, no mirroring', 0.25, [], False),
    ('overlap 0, no mirroring', 0.0, [], False),
    ('overlap 0.5, no mirroring, --amp (bf16)', 0.5, [], True),
]


def settings_table(args) -> list:
    import time

    import torch

    from densedet.apis.crossval import predict_held_out, score_fold
    from densedet.apis.precision import inference_autocast
    from densedet.apis.volume_inference import init_volume_model
    from densedet.evaluation.crossval import nan_from_none
    torch.set_num_threads(args.threads)
    config, checkpoint = args.settings
    cfg, dataset = _validation_cases(config, args.fold)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, overlap, mirror, amp in SETTINGS:
            model = init_volume_model(cfg, checkpoint, overlap=overlap, mirror_axes=mirror)
            out = osp.join(tmp, str(len(rows)))
            times = []
            for _ in range(1 + args.repeat):  # the first pass warms up (not timed)
                start = time.perf_counter()
                with inference_autocast(model, amp):
                    predict_held_out(model, dataset, out, log=lambda *a: None)
                times.append((time.perf_counter() - start) / len(dataset))
            seconds = min(times[1:])
            scores = nan_from_none(score_fold(out, args.fold, with_hd95=False))
            names = list(scores[0]['dice'])
            dice = {n: float(np.nanmean([c['dice'][n] for c in scores])) for n in names}
            rows.append(dict(setting=label, s_per_case=seconds, dice=dice))
            print(f'{label}: {seconds:.2f} s / case, ' + ', '.join(f'{n} {100 * d:.2f}' for n, d in dice.items()),
                  file=sys.stderr, flush=True)
    print_time_dice_table(f'prediction speed settings, {config}, fold {args.fold} validation ({len(dataset)} cases), '
                          f'{args.threads} threads, one process, fastest of {args.repeat} timed passes',
                          [('setting', lambda r: r['setting'])], 'vs first row', rows)
    write_report(args, settings=rows)
    return rows


def print_time_dice_table(title: str, columns, ratio_label: str, rows: list) -> None:
    """A markdown table of ``rows`` (each with ``s_per_case`` and ``dice``): the leading ``columns``
    (``(title, row -> text)``), seconds per case, their ratio to the first row, Dice per class."""
    base, names = rows[0]['s_per_case'], list(rows[0]['dice'])
    print(f'\n{title}\n')
    print('| ' + ' | '.join(c for c, _ in columns) + f' | s / case | {ratio_label} | '
          + ' | '.join(f'{n} Dice' for n in names) + ' |')
    print('|' + '---|' * (len(columns) + 2 + len(names)))
    for r in rows:
        print('| ' + ' | '.join(text(r) for _, text in columns) + f" | {r['s_per_case']:.2f} | "
              f"{r['s_per_case'] / base:.2f}x | " + ' | '.join(f"{100 * r['dice'][n]:.2f}" for n in names) + ' |')


def folds_table(args) -> list:
    import time

    import torch

    from densedet.apis.crossval import read_label
    from densedet.apis.ensemble import RecipePredictor, load_recipe
    from densedet.apis.volume_inference import find_cases
    from densedet.evaluation.crossval import score_held_out
    from densedet.structures import evaluation_targets
    torch.set_num_threads(args.threads)
    recipe_path, task = args.folds_table
    recipe = load_recipe(recipe_path)
    cases = find_cases([osp.join(task, 'imagesTr')])
    subsets = [None] + [[int(k) for k in subset.split(',')] for subset in args.fold_subsets]
    rows = []
    for folds in subsets:
        predictor = RecipePredictor(recipe, folds=folds)
        with torch.no_grad():
            predictor(cases[0][1])  # warm-up, not timed
            start, results = time.perf_counter(), []
            for case_id, paths, _ in cases:
                results.append((case_id, predictor(paths)))
            seconds = (time.perf_counter() - start) / len(cases)
        meta = predictor.members[0][0].dataset_meta or {}
        targets = evaluation_targets(list(meta['classes']))
        scores = []
        for case_id, labels in results:
            case = dict(case_id=case_id, label_values=meta.get('label_values'), ignore_value=None)
            label, spacing = read_label(case, osp.join(task, 'labelsTr', f'{case_id}.nii.gz'), 'label')
            scores.append(score_held_out(case_id, 0, np.asarray(labels), label, targets, spacing,
                                         with_hd95=False)['dice'])
        dice = {n: float(np.nanmean([c[n] for c in scores])) for n in scores[0]}
        count = sum(len(m) for m in predictor.members)
        label = 'every fold' if folds is None else 'folds ' + ' '.join(map(str, folds))
        rows.append(dict(folds=label, models=count, s_per_case=seconds, dice=dice))
        print(f'{label} ({count} models): {seconds:.2f} s / case, ' +
              ', '.join(f'{n} {100 * d:.2f}' for n, d in dice.items()), file=sys.stderr, flush=True)
    print_time_dice_table(f'recipe {recipe_path} with subsets of its folds, {len(cases)} cases of {task} that no fold '
                          f'trained on, {args.threads} threads, mirroring TTA as the recipe says '
                          f'({recipe.get("tta", True)})',
                          [('folds', lambda r: r['folds']), ('models', lambda r: str(r['models']))], 'vs every fold',
                          rows)
    write_report(args, folds=rows)
    return rows


def _validation_cases(config: str, fold: int):
    import densedet  # noqa: F401
    from densedet.apis.config import load_config
    from densedet.apis.crossval import fold_config
    from densedet.registry import DATASETS
    cfg = fold_config(load_config(config), fold)
    return cfg, DATASETS.build(cfg.val_dataloader.dataset)


def onnx_table(args) -> dict:
    import importlib.util
    import time

    import onnxruntime as ort
    import torch

    from densedet.apis import inference_volume, init_model
    from densedet.apis.crossval import read_label
    from densedet.apis.onnx_export import export_onnx, volume_metadata
    from densedet.evaluation.crossval import score_held_out
    from densedet.structures import evaluation_targets

    def script(name):
        spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, 'tools', 'deploy', f'{name}.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    onnx_volume = script('onnx_volume')
    torch.set_num_threads(args.threads)
    config, checkpoint = args.onnx
    cfg, dataset = _validation_cases(config, args.fold)
    model = init_model(cfg, checkpoint)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'model.onnx')
        export_onnx(model, path, tuple(model.test_cfg['roi_size']))
        meta = volume_metadata(model)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])

        def run(window):
            return session.run(None, {'input': window})[0]

        with torch.no_grad():  # warm-up, both ways, not timed
            inference_volume(model, dataset.data_list[0]['img_paths'])
        onnx_volume.predict_case(dataset.data_list[0]['img_paths'], run, meta)
        for info in dataset.data_list:
            case = dict(case_id=info['case_id'], label_values=info.get('label_values'), ignore_value=None)
            start = time.perf_counter()
            with torch.no_grad():
                torch_labels = inference_volume(model, info['img_paths']).pred_seg.numpy()
            torch_s = time.perf_counter() - start
            start = time.perf_counter()
            onnx_labels, _, _ = onnx_volume.predict_case(info['img_paths'], run, meta)
            onnx_s = time.perf_counter() - start
            if meta.get('label_values') is not None:  # back to class indices
                onnx_labels = np.searchsorted(np.asarray(meta['label_values']), onnx_labels)
            label, spacing = read_label(case, info['seg_path'], 'label')
            targets = evaluation_targets(list(model.dataset_meta.get('classes') or dataset.metainfo['classes']))
            dice = {k: score_held_out(info['case_id'], args.fold, p, label, targets, spacing, with_hd95=False)['dice']
                    for k, p in (('torch', torch_labels), ('onnx', onnx_labels))}
            rows.append(dict(case=info['case_id'], torch_s=torch_s, onnx_s=onnx_s,
                             identical=float((torch_labels == onnx_labels).mean()), dice=dice))
    print(f'\nONNX volume pipeline (onnxruntime, numpy) vs densedet PyTorch, {config}, fold {args.fold} validation, '
          f'{args.threads} threads\n')
    names = list(rows[0]['dice']['torch'])
    print('| case | PyTorch s | ONNX s | ONNX / PyTorch | identical voxels | ' +
          ' | '.join(f'{n} Dice PyTorch / ONNX' for n in names) + ' |')
    print('|---|---|---|---|---|' + '---|' * len(names))
    for r in rows:
        print(f"| {r['case']} | {r['torch_s']:.2f} | {r['onnx_s']:.2f} | {r['onnx_s'] / r['torch_s']:.2f}x | "
              f"{100 * r['identical']:.3f} % | " + ' | '.join(
                  f"{100 * r['dice']['torch'][n]:.2f} / {100 * r['dice']['onnx'][n]:.2f}" for n in names) + ' |')
    write_report(args, onnx=rows)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--shape', type=int, nargs=3, default=[300, 512, 512], metavar=('D', 'H', 'W'))
    parser.add_argument('--roi', type=int, nargs=3, default=[48, 160, 160], metavar=('D', 'H', 'W'))
    parser.add_argument('--classes', type=int, nargs='+', default=[3, 117])
    parser.add_argument('--systems', nargs='+', default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=1, help='runs of each system (fresh processes; medians)')
    parser.add_argument('--nnunet-python', default=osp.join(ROOT, '.venv-nnunet', 'bin', 'python'))
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument('--settings', nargs=2, metavar=('CONFIG', 'CKPT'),
                        help='time against Dice of the speed settings for this trained volume config')
    parser.add_argument('--fold', type=int, default=0, help="--settings / --onnx: the fold whose validation cases")
    parser.add_argument('--repeat', type=int, default=3, help='--settings: timed passes per setting (fastest kept)')
    parser.add_argument('--onnx', nargs=2, metavar=('CONFIG', 'CKPT'),
                        help='the ONNX volume pipeline against PyTorch for this trained volume config')
    parser.add_argument('--folds-table', nargs=2, metavar=('RECIPE', 'TASK_DIR'),
                        help='a cross-validated recipe with every fold and with --fold-subsets, on unseen cases')
    parser.add_argument('--fold-subsets', nargs='+', default=['0', '0,1,2'],
                        help='--folds-table: the subsets besides every fold, each a comma list')
    args = parser.parse_args(argv)
    if args.folds_table:
        return folds_table(args)
    if args.settings:
        return settings_table(args)
    if args.onnx:
        return onnx_table(args)
    if 'nnunet' in args.systems and not osp.isfile(args.nnunet_python):
        raise SystemExit(f'{args.nnunet_python} not found: bash tools/analysis/setup_nnunet_venv.sh')
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for classes in args.classes:
            runs = {s: [] for s in args.systems}
            for _ in range(args.rounds):  # systems interleaved, fresh processes; medians reported
                for system in args.systems:
                    floor = floor_gib(system, classes, args.shape, args.roi)
                    if runs[system] and 'seconds' not in runs[system][-1]:
                        continue  # skipped or failed once: not again
                    free = free_gib()
                    if floor > 0.9 * free:
                        runs[system].append(dict(skipped=f'needs >= {floor:.1f} GiB, {free:.1f} GiB free'))
                    else:
                        runs[system].append(run_one(args, system, classes, osp.join(tmp, f'{system}_{classes}.npy')))
                    print(f'{system}, {classes} classes: {runs[system][-1]}', file=sys.stderr, flush=True)
            for system, rs in runs.items():
                r = rs[-1] if 'seconds' not in rs[-1] else dict(
                    seconds=float(np.median([x['seconds'] for x in rs])),
                    peak_gib=float(np.median([x['peak_gib'] for x in rs])), rounds=rs)
                r['floor_gib'] = floor_gib(system, classes, args.shape, args.roi)
                results[f'{system}/{classes}'] = r
            labels = {s: np.load(osp.join(tmp, f'{s}_{classes}.npy'), mmap_mode='r') for s in args.systems
                      if osp.isfile(osp.join(tmp, f'{s}_{classes}.npy'))}
            for s, lab in labels.items():
                for ref in ('monai', 'nnunet'):
                    if ref in labels and ref != s:
                        results[f'{s}/{classes}'][f'same_as_{ref}'] = float(np.mean(lab == labels[ref]))
    print_table(args, results)
    write_report(args, results=results)
    return results


def print_table(args, results: dict) -> None:
    d, h, w = args.shape
    print(f'\nsliding-window prediction to labels, volume {d}x{h}x{w}, window {"x".join(map(str, args.roi))}, '
          f'overlap 0.5, Gaussian, 1 window per batch, no mirroring, {args.threads} threads, median of '
          f'{args.rounds} run(s)\n')
    print('| classes | system | peak memory (GiB) | vs MONAI default | time (s) | vs nnU-Net | labels = MONAI '
          '| labels = nnU-Net |')
    print('|---|---|---|---|---|---|---|---|')
    for classes in args.classes:
        monai, nnunet = results.get(f'monai/{classes}', {}), results.get(f'nnunet/{classes}', {})
        for system in args.systems:
            r = results[f'{system}/{classes}']
            if 'seconds' not in r:
                why = r.get('skipped') or f"failed: {r.get('error')}"
                print(f'| {classes} | {system} | {why} (floor {r["floor_gib"]:.1f}) | | | | | |')
                continue
            base_mem = monai.get('peak_gib') or monai.get('floor_gib')
            mem_ratio = f"{r['peak_gib'] / base_mem:.2f}x" + ('' if 'peak_gib' in monai else ' of its floor')
            time_ratio = f"{r['seconds'] / nnunet['seconds']:.2f}x" if 'seconds' in nnunet else ''
            same = [f"{100 * r[k]:.3f} %" if k in r else '' for k in ('same_as_monai', 'same_as_nnunet')]
            print(f"| {classes} | {system} | {r['peak_gib']:.2f} | {mem_ratio} | {r['seconds']:.1f} | {time_ratio} "
                  f"| {same[0]} | {same[1]} |")


if __name__ == '__main__':
    main()
