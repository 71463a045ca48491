"""Head-to-head 5-fold cross-validation: nnU-Net v2 ``3d_fullres`` against densedet's DenseUNet 3D and
UNet++ 3D on the same synthetic task, folds, patch and training budget, scored by one evaluator
(``benchmark.py --crossval-nnunet``).

    bash tools/analysis/setup_nnunet_venv.sh      # once: nnU-Net v2 in .venv-nnunet
    python tools/analysis/benchmark.py --crossval-nnunet [--work-dir work_dirs/bench_crossval] [--epochs 1]
        [--systems nnunet denseunet3d unetpp3d] [--folds 0 1 2 3 4] [--nnunet-python .venv-nnunet/bin/python]

Steps (each skipped when its output exists: a rerun after a kill continues):
1. the task: ``tools/data/make_hard_volume_task.py`` (20 cases, nnU-Net v2 raw layout);
2. nnU-Net plans and preprocesses it (``3d_fullres``); densedet's 5 seeded splits are written as its
   ``splits_final.json``, so both train and validate on the same folds;
3. densedet plans and preprocesses it with the benchmark configs (``configs/benchmarks/``), patch,
   batch size and budget set to nnU-Net's (a config written on top, ``WORK/configs/``);
4. per system and fold: training + held-out prediction with mirroring (nnU-Net's
   ``nnUNetv2_train -tr nnUNetTrainer_<epochs> -device cpu``, its own validation; densedet's
   ``tools/crossval.py --folds K --tta``), timed (wall) with ``/usr/bin/time`` (peak RSS, largest
   process); each network's training iteration time on the patch, measured alone;
5. one evaluator (densedet's, ``densedet.evaluation.crossval``) scores every held-out prediction
   against the label files; the table (per-class Dice mean ± sd over folds, wall time, peak RSS,
   s / iteration) is printed and written to ``WORK/report.json`` and ``WORK/report.png``.

Budget: nnU-Net's epochs x 250 iterations x its batch size patches of its planned patch, for every
system. CPU only (``--threads``).
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DATASET_ID, DATASET = 502, 'Dataset502_HardLiver'
NNUNET_TRAINERS = {1: 'nnUNetTrainer_1epoch', 5: 'nnUNetTrainer_5epochs', 10: 'nnUNetTrainer_10epochs'}
ITERATIONS_PER_EPOCH = 250  # nnU-Net's
CLASSES = ['background', 'liver', 'lesion']
MIRROR = [[2], [3], [4], [2, 3], [2, 4], [3, 4], [2, 3, 4]]
# Ablations of a densedet system, named after it with '+' (``--systems denseunet3d+adamw+instnorm``):
# each changes one thing towards what nnU-Net does, on top of the system's benchmark config.
ABLATIONS = {
    # AdamW with a warm-up (the 3D demo's optimizer) instead of SGD momentum 0.99 from the first step
    'adamw': '''optim_wrapper = dict(_delete_=True, type='OptimWrapper', clip_grad=dict(max_norm=12),
                     optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-4))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
                   dict(type='PolyLR', eta_min=0.0, power=0.9, begin=20, end={iters}, by_epoch=False)]
''',
    # nnU-Net's normalisation: instance norm (batch statistics of 2 patches are noisy)
    'instnorm': '''model = dict(backbone=dict(norm_cfg=dict(type='IN3d', affine=True)),
             decode_head=dict(norm_cfg=dict(type='IN3d', affine=True)))
''',
    # cross-entropy averaged over the labelled voxels only (padding is ignored, ~26 % of a patch)
    'ce': '''model = dict(losses=[dict(type='CrossEntropyLoss', loss_weight=1.0, avg_non_ignore=True),
                     dict(type='SoftDiceLoss', loss_weight=1.0)])
''',
    # UNet++ 3D with the widths, pooling strides and kernels of nnU-Net's plan (features_per_stage,
    # strides, kernel_sizes) instead of the paper's five isotropic levels 32-512 of 3x3x3 convs, which
    # pad a 20-slice patch to 32
    'plantopology': '''_channels = {channels}
model = dict(data_preprocessor=dict(size_divisor={divisor}),
             backbone=dict(channels=_channels, strides={strides}, kernel_sizes={kernel_sizes}),
             decode_head=dict(in_channels=_channels, strides={strides}, kernel_sizes={kernel_sizes}))
''',
    # nnU-Net's deep supervision: the decoder's two stages before the last also classify (halving weights)
    'deepsup': '''model = dict(decode_head=dict(deep_supervision=2))
''',
    # the decoder's two finest stages at nnU-Net's widths for strides 2 and 1 (64, 32) instead of
    # H-DenseUNet's 96 / 64: its full-resolution 3x3x3 conv (96 -> 64) was 54 % of the training step
    'slimdecoder': '''model = dict(decode_head=dict(up_channels=(504, 224, 192, 64, 32)))
''',
    # DenseNet's stem keeps the slices (conv stride (1, 2, 2) instead of 2, as nnU-Net's first pooling): the
    # dense blocks see 10 of a patch's 20 slices instead of 5
    'anisostem': '''model = dict(data_preprocessor=dict(size_divisor=(2, 32, 32)), backbone=dict(stem_stride=(1, 2, 2)),
             decode_head=dict(scale_factors=[(1, 2, 2)] * 5))
''',
    # the decoder's three finest stages at nnU-Net's widths for in-plane strides 4, 2, 1 (128, 64, 32; slimdecoder
    # sets the two finest): with anisostem the stride-4 and stride-2 stages see twice the slices
    'slimdecoder3': '''model = dict(decode_head=dict(up_channels=(504, 224, 128, 64, 32)))
''',
    # the decoder's full-resolution conv with the plan's kernel there ((1, 3, 3) for 2.97 mm slices) instead of 3x3x3
    'fullreskernel': '''model = dict(decode_head=dict(kernel_sizes=[3, 3, 3, 3, {kernel_sizes[0]}]))
''',
    # a full-resolution skip: nnU-Net's first stage (two convs at its planned width and kernel) on the input,
    # added to the decoder's last stage, which otherwise sees nothing finer than the stride-2 stem
    'fullresskip': '''model = dict(backbone=dict(out_indices=(0, 1, 2, 3, 4, 5),
                             input_skip=dict(out_channels={channels[0]}, kernel_size={kernel_sizes[0]})),
             decode_head=dict(in_channels=[{channels[0]}, 96, 192, 224, 496, 504]))
''',
}

NNUNET_SPEED = r'''
import json, statistics, sys, time
import torch
from batchgenerators.utilities.file_and_folder_operations import load_json
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
torch.set_num_threads(int(sys.argv[2]))
plans = load_json(sys.argv[1])
config = plans['configurations']['3d_fullres']
arch = config['architecture']
net = get_network_from_plans(arch['network_class_name'], arch['arch_kwargs'], arch['_kw_requires_import'], 1, 3,
                             deep_supervision=True)
opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.99)
x = torch.randn(config['batch_size'], 1, *config['patch_size'])
times = []
for _ in range(6):
    t = time.perf_counter()
    opt.zero_grad()
    loss = sum(o.float().pow(2).mean() for o in net(x))
    loss.backward()
    opt.step()
    times.append(time.perf_counter() - t)
print('RESULT ' + json.dumps(dict(s_per_iter=statistics.median(times[1:]),
                                  params_m=sum(p.numel() for p in net.parameters()) / 1e6)))
'''


def _run(cmd, env, log_path, what):
    """Runs ``cmd`` under /usr/bin/time; returns (wall s, peak RSS MiB). Output goes to ``log_path``."""
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    timing = log_path + '.time'
    with open(log_path, 'w') as log:
        out = subprocess.run(['/usr/bin/time', '-f', '%e %M', '-o', timing] + cmd, stdout=log, stderr=subprocess.STDOUT,
                             env=env, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f'{what} failed (exit {out.returncode}); see {log_path}')
    wall, rss_kib = open(timing).read().split()[-2:]
    return float(wall), int(rss_kib) / 1024


def _env(args, work):
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               nnUNet_raw=osp.join(work, 'raw'), nnUNet_preprocessed=osp.join(work, 'nnunet_preprocessed'),
               nnUNet_results=osp.join(work, 'nnunet_results'), nnUNet_n_proc_DA=str(args.workers),
               nnUNet_compile='f')
    return env


def _nnunet_bin(args, name):
    return osp.join(osp.dirname(args.nnunet_python), name)


def prepare(args, work, env, log):
    raw = osp.join(work, 'raw', DATASET)
    if not osp.isfile(osp.join(raw, 'dataset.json')):
        subprocess.run([sys.executable, 'tools/data/make_hard_volume_task.py', '--out', raw, '--cases',
                        str(args.cases), '--seed', str(args.seed)], check=True, cwd=ROOT)
    nn_pre = osp.join(work, 'nnunet_preprocessed', DATASET)
    plans_path = osp.join(nn_pre, 'nnUNetPlans.json')
    timings = {}
    if not osp.isfile(plans_path):
        timings['nnunet_preprocess_s'], _ = _run([_nnunet_bin(args, 'nnUNetv2_plan_and_preprocess'), '-d',
                                                  str(DATASET_ID), '-c', '3d_fullres', '-np', str(args.threads)],
                                                 env, osp.join(work, 'logs', 'nnunet_preprocess.log'),
                                                 'nnU-Net planning')
    from densedet.preparation.planning import make_splits
    cases = sorted(f[:-len('.nii.gz')] for f in os.listdir(osp.join(raw, 'labelsTr')) if f.endswith('.nii.gz'))
    splits = make_splits(cases, folds=5)
    for path in (osp.join(work, 'splits.json'), osp.join(nn_pre, 'splits_final.json')):
        with open(path, 'w') as f:
            json.dump(splits, f, indent=1)
    with open(plans_path) as f:
        plan = json.load(f)['configurations']['3d_fullres']
    log(f'nnU-Net plan: patch {plan["patch_size"]}, batch {plan["batch_size"]}, spacing '
        f'{[round(s, 3) for s in plan["spacing"]]}')
    return raw, splits, plan, plans_path, timings


def plan_topology(plan: dict) -> dict:
    """Widths, pooling strides (after the first stage), their total and the conv kernels of nnU-Net's
    planned network."""
    from densedet.models.utils import total_stride
    arch = plan['architecture']['arch_kwargs']
    strides = [tuple(s) for s in arch['strides'][1:]]
    return dict(channels=tuple(arch['features_per_stage']), strides=strides,
                divisor=total_stride(strides, len(arch['strides'][0])),
                kernel_sizes=[tuple(k) for k in arch['kernel_sizes']])


def densedet_config(args, work, system, plan) -> str:
    """Write ``WORK/configs/SYSTEM.py``; an ablated system (``base+a+b``) is a chain of configs, each on
    top of the one before."""
    if '+' in system:
        parent, ablation = system.rsplit('+', 1)
        if ablation not in ABLATIONS:
            raise SystemExit(f'unknown ablation {ablation!r} in {system!r}: one of {sorted(ABLATIONS)}')
        base = densedet_config(args, work, parent, plan)
        text = f"_base_ = ['./{osp.basename(base)}']\n"
        text += ABLATIONS[ablation].format(iters=args.epochs * ITERATIONS_PER_EPOCH, **plan_topology(plan))
        path = osp.join(work, 'configs', f'{system}.py')
        with open(path, 'w') as f:
            f.write(text)
        return path
    from densedet.transforms import spatial_input_size
    patch = tuple(plan['patch_size'])
    iters = args.epochs * ITERATIONS_PER_EPOCH
    text = f'''_base_ = [{osp.join(ROOT, 'configs', 'benchmarks', f'{system}_hardliver.py')!r}]
raw_root = {osp.join(work, 'raw', DATASET)!r}
preprocessed_root = {osp.join(work, 'densedet_preprocessed')!r}
plans_file = preprocessed_root + '/plans.json'
splits_file = {osp.join(work, 'splits.json')!r}
patch_size = {patch}
load_size = {spatial_input_size(patch, (30, 30, 30), 0.85)}
max_iters = {iters}
preprocess = dict(dataset=dict(data_root=raw_root), out_dir=preprocessed_root, plans_file=plans_file,
                  pipeline=[dict(type='LoadVolumeFromFile'), dict(type='CropToNonzero'),
                            dict(type='NormalizeFromPlans', plans_file=plans_file),
                            dict(type='ResampleSpacing', plans_file=plans_file)])
train_dataloader = dict(batch_size={plan['batch_size']}, num_workers={args.workers}, dataset=dict(
    data_root=preprocessed_root, splits_file=splits_file, pipeline=[
        dict(type='LoadPreprocessedPatch', patch_size=load_size, crop_size=patch_size, fg_ratio=1 / 3),
        dict(type='NnUNetAugmentation', patch_size=patch_size),
        dict(type='PackVolumeInputs')]))
_test = [dict(type='LoadVolumeFromFile'), dict(type='NormalizeFromPlans', plans_file=plans_file),
         dict(type='ResampleSpacing', plans_file=plans_file), dict(type='PackVolumeInputs')]
val_dataloader = dict(dataset=dict(data_root=raw_root, splits_file=splits_file, pipeline=_test))
test_dataloader = val_dataloader
model = dict(test_cfg=dict(roi_size=patch_size, flip_axes={MIRROR}))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters + 1)
'''
    path = osp.join(work, 'configs', f'{system}.py')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    return path


def densedet_speed(config: str, threads: int) -> dict:
    import statistics

    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from densedet.registry import MODELS
    torch.set_num_threads(threads)
    cfg = Config.fromfile(config)
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.99)
    x = torch.randn(cfg.train_dataloader.batch_size, 1, *cfg.patch_size)
    x = model.data_preprocessor(dict(inputs=list(x), data_samples=None), training=False)['inputs']
    times = []
    for _ in range(6):
        t = time.perf_counter()
        optimizer.zero_grad()
        loss = sum(o.float().pow(2).mean() for o in model.forward_train_logits(x))
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - t)
    return dict(s_per_iter=statistics.median(times[1:]), params_m=sum(p.numel() for p in model.parameters()) / 1e6,
                padded_patch=list(x.shape[2:]))


def run_fold(args, work, env, system, fold, config=None) -> dict:
    out = osp.join(work, 'results', f'{system}_fold_{fold}.json')
    if osp.isfile(out):
        with open(out) as f:
            return json.load(f)
    logs = osp.join(work, 'logs', f'{system}_fold_{fold}.log')
    if system == 'nnunet':
        trainer = NNUNET_TRAINERS[args.epochs]
        wall, rss = _run([_nnunet_bin(args, 'nnUNetv2_train'), str(DATASET_ID), '3d_fullres', str(fold), '-tr',
                          trainer, '-device', 'cpu'], env, logs, f'nnU-Net fold {fold}')
        validation = osp.join(work, 'nnunet_results', DATASET, f'{trainer}__nnUNetPlans__3d_fullres',
                              f'fold_{fold}', 'validation')
    else:
        wall, rss = _run([sys.executable, 'tools/crossval.py', config, '--folds', str(fold), '--work-dir',
                          osp.join(work, system), '--tta', '--no-hd95'], env, logs, f'{system} fold {fold}')
        validation = osp.join(work, system, f'fold_{fold}', 'validation')
    result = dict(system=system, fold=fold, wall_s=wall, peak_rss_mib=rss, validation=validation)
    with open(out, 'w') as f:
        json.dump(result, f, indent=1)
    return result


def score(work, raw, splits, results) -> dict:
    from densedet.apis.crossval import read_label
    from densedet.evaluation.crossval import score_held_out, summarize
    from densedet.structures import evaluation_targets
    targets = evaluation_targets(CLASSES)
    cases = []
    for r in results:
        for case_id in splits[r['fold']]['val']:
            case = dict(case_id=case_id, label_values=[0, 1, 2], ignore_value=None)
            label, spacing = read_label(case, osp.join(raw, 'labelsTr', f'{case_id}.nii.gz'), 'label')
            pred, _ = read_label(case, osp.join(r['validation'], f'{case_id}.nii.gz'), 'prediction')
            cases.append(score_held_out(case_id, r['fold'], pred, label, targets, spacing, with_hd95=True))
    return summarize(cases, [n for n, _ in targets])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/bench_crossval')
    parser.add_argument('--systems', nargs='+', default=['nnunet', 'denseunet3d', 'unetpp3d'])
    parser.add_argument('--folds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    parser.add_argument('--epochs', type=int, default=1, choices=sorted(NNUNET_TRAINERS),
                        help="nnU-Net epochs of 250 iterations: every system's budget")
    parser.add_argument('--cases', type=int, default=20)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--workers', type=int, default=1, help='data-augmentation processes of each system')
    parser.add_argument('--nnunet-python', default='.venv-nnunet/bin/python')
    args = parser.parse_args(argv)
    work = osp.abspath(args.work_dir)
    if 'nnunet' in args.systems and not osp.isfile(args.nnunet_python):
        raise SystemExit(f'{args.nnunet_python} not found: bash tools/analysis/setup_nnunet_venv.sh')
    args.nnunet_python = osp.abspath(args.nnunet_python)
    from densedet.errors import WorkDirBusyError
    from densedet.fileio import exclusive_lock
    try:  # two invocations on one work dir would train the same folds at once, each at half speed
        with exclusive_lock(work, f'the head-to-head benchmark in {work}'):
            return run_benchmark(args, work)
    except WorkDirBusyError as error:
        raise SystemExit(str(error)) from None


def run_benchmark(args, work: str) -> dict:
    env = _env(args, work)
    log = print
    raw, splits, plan, plans_path, timings = prepare(args, work, env, log)
    configs = {s: densedet_config(args, work, s, plan) for s in args.systems if s != 'nnunet'}
    if configs and not osp.isfile(osp.join(work, 'densedet_preprocessed', 'dataset.json')):
        first = next(iter(configs.values()))
        _run([sys.executable, 'tools/data/plan_volumes.py', first], env, osp.join(work, 'logs', 'densedet_plan.log'),
             'densedet planning')
        timings['densedet_preprocess_s'], _ = _run(
            [sys.executable, 'tools/data/preprocess_volumes.py', first, '--workers', str(args.threads)], env,
            osp.join(work, 'logs', 'densedet_preprocess.log'), 'densedet preprocessing')
    report = dict(budget=dict(iterations=args.epochs * ITERATIONS_PER_EPOCH, batch=plan['batch_size'],
                              patch=plan['patch_size'], threads=args.threads),
                  timings=timings, systems={})
    for system in args.systems:
        speed_path = osp.join(work, 'results', f'{system}_speed.json')
        if not osp.isfile(speed_path):
            if system == 'nnunet':
                out = subprocess.run([args.nnunet_python, '-c', NNUNET_SPEED, plans_path, str(args.threads)],
                                     capture_output=True, text=True, env=env, check=True)
                speed = json.loads(out.stdout.split('RESULT ', 1)[1])
            else:
                speed = densedet_speed(configs[system], args.threads)
            os.makedirs(osp.dirname(speed_path), exist_ok=True)
            with open(speed_path, 'w') as f:
                json.dump(speed, f)
        with open(speed_path) as f:
            speed = json.load(f)
        results = []
        for fold in args.folds:
            start = time.time()
            results.append(run_fold(args, work, env, system, fold, configs.get(system)))
            log(f'{system} fold {fold}: {results[-1]["wall_s"]:.0f} s ({time.time() - start:.0f} s now)')
        summary = score(work, raw, splits, results)
        report['systems'][system] = dict(summary=summary, speed=speed, wall_s=sum(r['wall_s'] for r in results),
                                         peak_rss_mib=max(r['peak_rss_mib'] for r in results), folds=results)
    with open(osp.join(work, 'report.json'), 'w') as f:
        json.dump(report, f, indent=1, default=float)
    from densedet.evaluation.crossval import plot_dice_boxes
    plot_dice_boxes({s: r['summary'] for s, r in report['systems'].items()}, osp.join(work, 'report.png'),
                    title='held-out Dice, 5-fold CV, same budget')
    print_report(report)
    return report


def print_report(report: dict) -> None:
    b = report['budget']
    print(f"budget: {b['iterations']} iterations x batch {b['batch']} x patch {b['patch']} "
          f"({b['iterations'] * b['batch']} samples), {b['threads']} CPU threads")
    base = report['systems'].get('nnunet')
    print('| system | liver Dice | lesion Dice | mean fg Dice | wall (s) | vs nnU-Net | peak RSS (MiB) '
          '| s / iteration |')
    print('|---|---|---|---|---|---|---|---|')
    for name, r in report['systems'].items():
        folds = r['summary']['over_folds']

        def pm(stat):
            return f"{100 * stat['mean']:.2f} ± {100 * stat['sd']:.2f}"

        ratio = f"{r['wall_s'] / base['wall_s']:.2f}x" if base else ''
        dice = folds['dice']
        print(f"| {name} | {pm(dice['liver'])} | {pm(dice['lesion'])} | {pm(folds['mean_fg_dice'])} "
              f"| {r['wall_s']:.0f} | {ratio} | {r['peak_rss_mib']:.0f} | {r['speed']['s_per_iter']:.2f} |")


if __name__ == '__main__':
    main()
