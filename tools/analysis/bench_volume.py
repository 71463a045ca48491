"""Volume mode of tools/analysis/benchmark.py: 3D sliding-window inference through densedet's
segmentor against MONAI's function called directly (paired times in one process, peak memory in
fresh processes)."""
import os
import resource
import statistics
import time

import torch
from bench_common import ROOT, rss_kib, write_report


def volume_inference(name: str, size: int, threads: int, iters: int, net: str = 'demo') -> dict:
    """Sliding-window inference of a 3D network through a densedet segmentor's ``inference``
    (MONAI's stitching + densedet's window predictor) and through MONAI's function directly.

    ``name`` ``'densedet'`` / ``'monai'``: the peak RSS rise of one inference that way (a fresh
    process each, so the peaks do not mix). ``'time'``: both timed in this one process,
    alternating, ``iters`` times each (a paired comparison: process-to-process speed
    differences on these machines exceed the effect).
    """
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from monai.inferers import sliding_window_inference as monai_swi

    import densedet  # noqa: F401
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', 'demo', 'denseunet3d_msd-liver_demo.py'))
    init_default_scope('mmseg')
    roi = (size // 4, size // 2, size // 2)
    cfg.model.test_cfg = dict(roi_size=roi, overlap=0.5, sw_batch_size=2, blend='gaussian')
    segmentor = MODELS.build(cfg.model).eval()
    if net == 'conv':  # one 3x3x3 conv: the stitching itself dominates
        conv = torch.nn.Conv3d(1, 3, 3, padding=1).eval()
        segmentor.forward_logits = lambda x: conv(x)  # a plain function shadows the method (a Module would not)
    volume = torch.randn(1, 1, size // 2, size, size)
    runs = {
        'densedet': lambda: segmentor.inference(volume),
        'monai': lambda: monai_swi(volume, roi, 2, segmentor.forward_logits, overlap=0.5, mode='gaussian'),
    }
    with torch.no_grad():
        if name in runs:
            base_rss = rss_kib()
            out = runs[name]()
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss
            del out
            return dict(model=name, peak_mib=max(peak, 0) / 1024)
        if name != 'time':
            raise ValueError(f'unknown volume worker {name!r}')
        for run in runs.values():
            run()  # warm-up
        times = {k: [] for k in runs}
        for _ in range(iters):
            for key, run in runs.items():
                t = time.perf_counter()
                run()
                times[key].append(time.perf_counter() - t)
    return dict(model='time', voxels=volume.numel(), **{f'{k}_s': statistics.median(v) for k, v in times.items()})


def report(args, results) -> None:
    results = {m: rs for (m, _), rs in results.items()}
    voxels = results['time'][0]['voxels']
    summary = {}
    for impl in ('densedet', 'monai'):
        seconds = statistics.median(r[f'{impl}_s'] for r in results['time'])
        summary[impl] = dict(seconds=seconds, voxels_per_s=voxels / seconds,
                             peak_mib=statistics.median(r['peak_mib'] for r in results[impl]))
    paired = statistics.median(r['densedet_s'] / r['monai_s'] for r in results['time'])
    net = '3D DenseUNet (demo)' if args.volume_net == 'demo' else 'one 3x3x3 conv'
    d, s = args.size // 2, args.size
    print(f'\nsliding-window inference, {net}, volume 1x1x{d}x{s}x{s}, window {args.size // 4}x{s // 2}x{s // 2}, '
          f'overlap 0.5, 2 windows per batch, Gaussian, {args.threads} threads; times: median of {args.rounds} '
          f'processes x {args.iters} alternating runs; memory: median of {args.rounds} fresh processes each\n')
    print('| implementation | time (s) | voxels/s | peak RSS rise (MiB) |')
    print('|---|---|---|---|')
    for m, r in summary.items():
        print(f'| {m} | ' + ' | '.join(f'{r[k]:.4g} ({r[k] / summary["monai"][k]:.2f}x)' if summary['monai'][k]
                                       else f'{r[k]:.4g}' for k in ('seconds', 'voxels_per_s', 'peak_mib')) + ' |')
    print(f'\npaired time ratio densedet / monai (median over processes): {paired:.3f}')
    write_report(args, summary=summary, paired_ratio=paired, runs=results)
