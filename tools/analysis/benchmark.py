"""Speed and memory of densedet backbones (or whole configs) against their references.

    python tools/analysis/benchmark.py --arch tiny --size 512 --threads 2 [--rounds 3]
    python tools/analysis/benchmark.py --config configs/upernet_rdnet_ade20k.py --size 512

    python tools/analysis/benchmark.py --family densenet --arch 121 --size 512

Backbone mode compares, with the same weights and inputs: ``densedet`` (the densedet
backbone), ``densedet-cp`` (the same with ``with_cp=True``), ``reference`` (timm's
``rdnet_*``, ``ese_vovnet*b``, ``dla*``, ``dpn*``, or torchvision's ``densenet*``; HarDNet has
none) and, for RDNet, ``convnext`` (timm ``convnext_tiny``, a non-dense baseline).
For each it measures

* forward latency of a ``1x3xSxS`` batch (eval, no grad);
* one training step (forward + backward of the four feature maps' mean) on ``Bx3xSxS``;
* the training step's peak memory: the rise of the process's peak RSS over the
  memory held after building the model (each measurement runs in a fresh process);
* the bytes autograd keeps for backward (saved tensors, deduplicated by storage).

Each model is measured in its own subprocess, ``--rounds`` times, models
interleaved; the table reports the median over rounds and ratios against ``reference``.
These numbers are relative: report ratios from one run, not absolute times.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)


def _rss_kib() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') // 1024


def _reference(family: str, arch: str):
    """The upstream network with the same weights, and a function returning its four maps."""
    import timm
    import torchvision
    if family == 'rdnet':
        ref = timm.create_model(f'rdnet_{arch}', pretrained=False)
        return ref, lambda x: ref.forward_intermediates(x, intermediates_only=True)
    if family == 'densenet':
        ref = getattr(torchvision.models, f'densenet{arch}')(weights=None)

        def run(x):
            outs = []
            for name, module in ref.features.named_children():
                x = module(x)
                if name.startswith('denseblock') and name != 'denseblock4':
                    outs.append(x)
            return outs + [torch.relu(x)]
        return ref, run
    if family == 'vovnet':
        from timm.models.vovnet import VovNet, model_cfgs
        ref = VovNet(model_cfgs[f'ese_vovnet{arch}b'])
        return ref, lambda x: ref.forward_intermediates(x, indices=[1, 2, 3, 4], intermediates_only=True)
    if family == 'dla':
        ref = timm.create_model(f'dla{arch}', pretrained=False)
        return ref, lambda x: ref.forward_intermediates(x, indices=[2, 3, 4, 5], intermediates_only=True)
    if family == 'dpn':
        ref = timm.create_model(f'dpn{arch}', pretrained=False)
        return ref, lambda x: ref.forward_intermediates(x, indices=[1, 2, 3, 4], norm=True, intermediates_only=True)
    raise KeyError(f'no reference implementation for {family!r}')


FAMILIES = {'rdnet': 'RDNet', 'densenet': 'DenseNet', 'vovnet': 'VoVNet', 'dla': 'DLA', 'dpn': 'DPN',
            'hardnet': 'HarDNet'}


def _build(name: str, arch: str, config: str = None, family: str = 'rdnet'):
    import timm

    import densedet  # noqa: F401
    from mmengine.registry import MODELS
    torch.manual_seed(0)
    if config:
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        cfg = Config.fromfile(config)
        init_default_scope(cfg.get('default_scope', 'mmseg'))
        if name == 'densedet-cp':
            cfg.model.backbone.with_cp = True
        model = MODELS.build(cfg.model)
        return (lambda x: model._forward(x)) if hasattr(model, '_forward') else model, model
    if name == 'convnext':
        ref = timm.create_model('convnext_tiny', pretrained=False)
        return lambda x: ref.forward_intermediates(x, intermediates_only=True), ref
    if name == 'reference':
        ref, run = _reference(family, arch)
        return run, ref
    model = MODELS.build(dict(type=FAMILIES[family], arch=arch, with_cp=name == 'densedet-cp'))
    if family != 'hardnet':  # same weights as the reference
        ref, _ = _reference(family, arch)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, 'ref.pth')
            torch.save(ref.state_dict(), path)
            model.init_cfg = dict(type='Pretrained', checkpoint=path)
            model.init_weights()
    return model, model


def _saved_bytes(fn, x) -> int:
    import torch
    storages = {}

    def pack(t):
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        outs = fn(x)
    del outs
    return sum(storages.values())


def worker(args) -> dict:
    import torch
    torch.set_num_threads(args.threads)
    fn, module = _build(args.worker, args.arch, args.config, args.family)

    def loss_of(outs):
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return sum(o.float().mean() for o in outs)

    x1 = torch.randn(1, 3, args.size, args.size)
    xb = torch.randn(args.batch, 3, args.size, args.size)
    module.eval()
    with torch.no_grad():
        fn(x1)  # warm-up
        times = []
        for _ in range(args.iters):
            t = time.perf_counter()
            fn(x1)
            times.append(time.perf_counter() - t)
    forward = statistics.median(times)

    module.train()
    base_rss = _rss_kib()
    loss_of(fn(xb)).backward()  # warm-up, and the memory peak of one step
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss
    module.zero_grad(set_to_none=True)
    times = []
    for _ in range(args.iters):
        t = time.perf_counter()
        loss_of(fn(xb)).backward()
        times.append(time.perf_counter() - t)
        module.zero_grad(set_to_none=True)
    saved = _saved_bytes(fn, xb)
    return dict(model=args.worker, forward_s=forward, train_s=statistics.median(times),
                peak_mib=max(peak, 0) / 1024, saved_mib=saved / 2**20)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--family', default='rdnet', choices=sorted(FAMILIES),
                        help='backbone family; compared against its timm/torchvision implementation')
    parser.add_argument('--arch', default='tiny')
    parser.add_argument('--config', help='benchmark a whole model built from this config instead')
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--batch', type=int, default=2, help='batch of the training step')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--iters', type=int, default=3, help='timed iterations per process')
    parser.add_argument('--rounds', type=int, default=3, help='processes per model, interleaved')
    parser.add_argument('--models', default=None, help='comma list; default: all that apply')
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print('RESULT ' + json.dumps(worker(args)))
        return
    if args.models:
        models = args.models.split(',')
    elif args.config or args.family == 'hardnet':  # no upstream implementation to compare with
        models = ['densedet', 'densedet-cp']
    elif args.family == 'rdnet':
        models = ['densedet', 'densedet-cp', 'reference', 'convnext']
    else:
        models = ['densedet', 'densedet-cp', 'reference']
    results = {m: [] for m in models}
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    for r in range(args.rounds):
        for m in models:
            cmd = [sys.executable, __file__, '--worker', m, '--family', args.family, '--arch', args.arch,
                   '--size', str(args.size),
                   '--batch', str(args.batch), '--threads', str(args.threads), '--iters', str(args.iters)]
            if args.config:
                cmd += ['--config', args.config]
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if out.returncode != 0:
                raise RuntimeError(f'worker {m} failed:\n{out.stderr[-3000:]}')
            line = [ln for ln in out.stdout.splitlines() if ln.startswith('RESULT ')][-1]
            results[m].append(json.loads(line[7:]))
            print(f'round {r + 1}/{args.rounds} {m}: {results[m][-1]}', file=sys.stderr, flush=True)
    keys = ('forward_s', 'train_s', 'peak_mib', 'saved_mib')
    summary = {m: {k: statistics.median(x[k] for x in rs) for k in keys} for m, rs in results.items()}
    base = 'reference' if 'reference' in summary else models[0]
    what = args.config or f'{FAMILIES[args.family]}-{args.arch}'
    print(f'\n{what}, forward 1x3x{args.size}x{args.size}, train step {args.batch}x3x{args.size}x{args.size}, '
          f'{args.threads} threads, median of {args.rounds} processes x {args.iters} iterations; '
          f'ratios against {base}\n')
    print('| model | forward (s) | train step (s) | train peak RSS (MiB) | saved for backward (MiB) |')
    print('|---|---|---|---|---|')
    for m, s in summary.items():
        cells = [f'{s[k]:.3f} ({s[k] / summary[base][k]:.2f}x)' if summary[base][k] else f'{s[k]:.3f}'
                 for k in keys]
        print(f'| {m} | ' + ' | '.join(cells) + ' |')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), summary=summary, runs=results), f, indent=1)


if __name__ == '__main__':
    main()
