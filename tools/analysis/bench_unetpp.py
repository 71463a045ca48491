"""UNet++ mode of tools/analysis/benchmark.py: inference of the full network ('accurate', four
heads) and pruned to depth L4..L1, in one process with the variants interleaved."""
import os
import statistics
import time

import torch
from bench_common import ROOT, write_report


def unetpp_pruning(size: int, threads: int, rounds: int, iters: int) -> dict:
    """Median forward latency of UNet++ 'accurate' and pruned L4..L1, in one process."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    import densedet  # noqa: F401
    from densedet.models.decode_heads import prune_unetpp
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', 'unetpp', 'unetpp_drive.py'))
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model).eval()
    x = torch.randn(1, 3, size, size)
    variants = {'accurate (L4, 4 heads)': None, 'L4': 4, 'L3': 3, 'L2': 2, 'L1': 1}
    times = {name: [] for name in variants}
    with torch.no_grad():
        for _ in range(rounds):
            for name, level in variants.items():
                prune_unetpp(model, level)
                model._forward(x)  # warm-up
                for _ in range(iters):
                    t = time.perf_counter()
                    model._forward(x)
                    times[name].append(time.perf_counter() - t)
    prune_unetpp(model, None)
    return {name: statistics.median(ts) for name, ts in times.items()}


def run(args) -> dict:
    res = unetpp_pruning(args.size, args.threads, args.rounds, args.iters)
    full = res['accurate (L4, 4 heads)']
    print(f'\nUNet++ (32-512, L=4) inference on 1x3x{args.size}x{args.size}, {args.threads} threads, '
          f'median of {args.rounds} rounds x {args.iters} iterations\n')
    print('| variant | forward (s) | speed-up vs accurate |')
    print('|---|---|---|')
    for name, t in res.items():
        print(f'| {name} | {t:.4f} | {full / t:.2f}x |')
    write_report(args, summary=res)
    return res
