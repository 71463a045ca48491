"""Backbone, config and detector modes of tools/analysis/benchmark.py: one model measured in a
worker process (forward latency, training step, its peak memory, bytes saved for backward; optional
op profile), and the tables over models and precision / layout / compile modes."""
import os
import resource
import statistics
import tempfile
import time

import torch
from bench_common import ROOT, rss_kib, write_report

CONVNEXT_T_CHANNELS = [96, 192, 384, 768]


FAMILIES = {'rdnet': 'RDNet', 'densenet': 'DenseNet', 'vovnet': 'VoVNet', 'dla': 'DLA', 'dpn': 'DPN',
            'hardnet': 'HarDNet'}


def reference(family: str, arch: str):
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


def build(name: str, arch: str, config: str = None, family: str = 'rdnet'):
    import timm
    from mmengine.registry import MODELS

    import densedet  # noqa: F401
    torch.manual_seed(0)
    if config:
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        cfg = Config.fromfile(config)
        init_default_scope(cfg.get('default_scope', 'mmseg'))
        if name == 'densedet-cp':
            cfg.model.backbone.with_cp = True
        elif name == 'convnext':  # the same segmentor on timm's ConvNeXt-T, through mmseg's TIMMBackbone
            if list(cfg.model.decode_head.get('in_index', [])) != [0, 1, 2, 3]:
                raise ValueError(f'--models convnext: {config} must decode all four levels (in_index=[0, 1, 2, 3])')
            cfg.model.backbone = dict(type='mmseg.TIMMBackbone', model_name='convnext_tiny', pretrained=False,
                                      features_only=True, out_indices=(0, 1, 2, 3))
            cfg.model.decode_head.in_channels = CONVNEXT_T_CHANNELS
            if cfg.model.get('auxiliary_head'):
                cfg.model.auxiliary_head.in_channels = CONVNEXT_T_CHANNELS[cfg.model.auxiliary_head.in_index]
        model = MODELS.build(cfg.model)
        return (lambda x: model._forward(x)) if hasattr(model, '_forward') else model, model
    if name == 'convnext':
        ref = timm.create_model('convnext_tiny', pretrained=False)
        return lambda x: ref.forward_intermediates(x, intermediates_only=True), ref
    if name == 'reference':
        ref, run = reference(family, arch)
        return run, ref
    model = MODELS.build(dict(type=FAMILIES[family], arch=arch, with_cp=name == 'densedet-cp'))
    if family != 'hardnet':  # same weights as the reference
        ref, _ = reference(family, arch)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, 'ref.pth')
            torch.save(ref.state_dict(), path)
            model.init_cfg = dict(type='Pretrained', checkpoint=path)
            model.init_weights()
    return model, model


DETECTOR_CONFIG = os.path.join(ROOT, 'configs', 'mask-rcnn_rdnet_coco.py')


RESNET50 = dict(type='ResNet', depth=50, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
                norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True, style='pytorch')


def detector_task(name: str, size: int, batch: int):
    """(module, predict(), train_loss()) for Mask R-CNN with RDNet-T ('rdnet') or ResNet-50 ('resnet50')."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.config import Config
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.structures import InstanceData

    import densedet  # noqa: F401
    torch.manual_seed(0)
    cfg = Config.fromfile(DETECTOR_CONFIG)
    init_default_scope('mmdet')
    if name == 'resnet50':
        cfg.model.backbone = RESNET50
        cfg.model.neck.in_channels = [256, 512, 1024, 2048]
    elif name != 'rdnet':
        raise ValueError(f'unknown detector {name!r}')
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()

    def samples(n):
        out = []
        for _ in range(n):
            s = DetDataSample(metainfo=dict(img_shape=(size, size), pad_shape=(size, size), ori_shape=(size, size),
                                            scale_factor=(1., 1.), batch_input_shape=(size, size)))
            inst = InstanceData()
            a, b = size // 8, size // 2
            inst.bboxes = torch.tensor([[a, a, b, b], [b - a, a, size - a, b + a]], dtype=torch.float32)
            inst.labels = torch.tensor([0, 5])
            masks = torch.zeros(2, size, size, dtype=torch.uint8)
            masks[0, a:b, a:b] = 1
            masks[1, a:b + a, b - a:size - a] = 1
            inst.masks = BitmapMasks(masks.numpy(), size, size)
            s.gt_instances = inst
            out.append(s)
        return out

    x1, s1 = torch.randn(1, 3, size, size), samples(1)
    xb, sb = torch.randn(batch, 3, size, size), samples(batch)
    return model, lambda: model.predict(x1, s1), lambda: model.parse_losses(model.loss(xb, sb))[0]


def saved_bytes(fn, x) -> int:
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


def autocast(fn, precision: str, device: str):
    dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}[precision]
    device = torch.device(device).type

    def run(x):
        with torch.autocast(device_type=device, dtype=dtype):
            return fn(x)

    return run


def worker(args) -> dict:
    """One model's measurements; ``densedet-plain`` is ``densedet`` with its CPU kernel choices
    (``densedet/models/layers/cpu_paths.py``) switched off: PyTorch's plain ops."""
    from densedet.models.layers.cpu_paths import cpu_paths
    with cpu_paths(args.worker != 'densedet-plain'):
        return measure(args)


def measure(args) -> dict:
    import torch
    torch.set_num_threads(args.threads)
    if getattr(args, 'detector', False):
        module, forward_fn, train_loss = detector_task(args.worker, args.size, args.batch)
    else:
        fn, module = build(args.worker, args.arch, args.config, args.family)
        module.to(args.device)
        x1 = torch.randn(1, 3, args.size, args.size, device=args.device)
        xb = torch.randn(args.batch, 3, args.size, args.size, device=args.device)

        def forward_fn():
            return fn(x1)

        if args.channels_last:
            module.to(memory_format=torch.channels_last)
            x1, xb = (t.contiguous(memory_format=torch.channels_last) for t in (x1, xb))
        if args.compile:
            if args.compile == 'inductor':  # as tools/test.py --compile: frozen weights in inference graphs
                from densedet.apis.compile import freeze_inference_graphs
                freeze_inference_graphs()
            fn = torch.compile(fn, backend=args.compile)  # compiled in the warm-up calls (not timed)
        if args.precision != 'fp32':
            fn = autocast(fn, args.precision, args.device)

        def train_loss():
            outs = fn(xb)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            return sum(o.float().mean() for o in outs)

    cuda = getattr(args, 'device', 'cpu').startswith('cuda')
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    module.eval()
    with torch.no_grad():
        forward_fn()  # warm-up
        times = []
        for _ in range(args.iters):
            sync()
            t = time.perf_counter()
            forward_fn()
            sync()
            times.append(time.perf_counter() - t)
    forward = statistics.median(times)

    module.train()
    base_rss = rss_kib()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
    train_loss().backward()  # warm-up, and the memory peak of one step
    # CPU: the rise of the process's peak RSS; CUDA: the peak of allocated device memory
    peak = (torch.cuda.max_memory_allocated() - base_cuda) / 1024 if cuda else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss
    module.zero_grad(set_to_none=True)
    times = []
    for _ in range(args.iters):
        sync()
        t = time.perf_counter()
        train_loss().backward()
        sync()
        times.append(time.perf_counter() - t)
        module.zero_grad(set_to_none=True)
    saved = saved_bytes(lambda _: train_loss(), None)
    result = dict(model=args.worker, forward_s=forward, train_s=statistics.median(times),
                  peak_mib=max(peak, 0) / 1024, saved_mib=saved / 2**20)
    if getattr(args, 'profile', False):
        module.eval()
        with torch.no_grad():
            result['profile_forward'] = op_shares(forward_fn)
        module.train()
        result['profile_train'] = op_shares(lambda: train_loss().backward())
    return result


def op_kind(event) -> str:
    """The op's name; convolutions split into depthwise (weights ``C x 1 x k x k``) and the rest."""
    name = event.name
    weight_arg = {'aten::mkldnn_convolution': 1, 'mkldnn::_convolution_pointwise': 1,
                  'aten::convolution_backward': 2}.get(name)
    if weight_arg is not None and len(event.input_shapes) > weight_arg:
        weight = event.input_shapes[weight_arg]
        if len(weight) >= 4:
            depthwise = weight[1] == 1 and weight[-1] > 1
            name += ' (depthwise)' if depthwise else f' ({"x".join(map(str, weight[2:]))})'
    return name


def op_shares(step, top: int = 8) -> dict:
    """Self CPU time of one call of ``step`` per op (torch.profiler), as shares of the total."""
    from torch.profiler import profile
    with profile(record_shapes=True) as prof:
        step()
    totals = {}
    for event in prof.events():
        kind = op_kind(event)
        totals[kind] = totals.get(kind, 0.0) + event.self_cpu_time_total
    total = sum(totals.values())
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    return {kind: t / total for kind, t in ranked}


def default_models(args) -> list:
    """The models a run compares: ``--models``, else all that apply to the mode and family."""
    if args.models:
        return args.models.split(',')
    if args.detector:
        return ['rdnet', 'resnet50']
    if args.config or args.family == 'hardnet':  # no upstream implementation to compare with
        return ['densedet', 'densedet-cp']
    if args.family == 'rdnet':
        return ['densedet', 'densedet-cp', 'reference', 'convnext']
    return ['densedet', 'densedet-cp', 'reference']


def worker_args(args, modes):
    """The worker options of a mode (and of a round: the profile is taken in the first)."""
    def options(mode, round_index):
        precision, channels_last, compile_backend = modes[mode]
        cmd = ['--family', args.family, '--arch', args.arch, '--size', str(args.size), '--batch', str(args.batch),
               '--threads', str(args.threads), '--iters', str(args.iters), '--precision', precision,
               '--device', args.device]
        cmd += ['--config', args.config] if args.config else []
        cmd += ['--channels-last'] if channels_last else []
        cmd += ['--compile', compile_backend] if compile_backend else []
        cmd += ['--profile'] if args.profile and round_index == 0 else []
        cmd += ['--detector'] if args.detector else []
        return cmd
    return options


KEYS = ('forward_s', 'train_s', 'peak_mib', 'saved_mib')


def report(args, models, modes, results) -> None:
    """The table of one mode (ratios against the reference), or of several (:func:`print_modes_table`)."""
    if args.profile:
        print_profiles(results)
    if len(modes) > 1:
        return print_modes_table(args, models, modes, results, KEYS)
    results = {m: rs for (m, _), rs in results.items()}
    summary = {m: {k: statistics.median(x[k] for x in rs) for k in KEYS} for m, rs in results.items()}
    base = 'reference' if 'reference' in summary else 'resnet50' if 'resnet50' in summary else models[0]
    what = 'Mask R-CNN (predict as forward)' if args.detector else args.config or f'{FAMILIES[args.family]}-{args.arch}'
    print(f'\n{what}, forward 1x3x{args.size}x{args.size}, train step {args.batch}x3x{args.size}x{args.size}, '
          f'{args.threads} threads, median of {args.rounds} processes x {args.iters} iterations; '
          f'ratios against {base}\n')
    print('| model | forward (s) | train step (s) | train peak RSS (MiB) | saved for backward (MiB) |')
    print('|---|---|---|---|---|')
    for m, s in summary.items():
        cells = [f'{s[k]:.3f} ({s[k] / summary[base][k]:.2f}x)' if summary[base][k] else f'{s[k]:.3f}'
                 for k in KEYS]
        print(f'| {m} | ' + ' | '.join(cells) + ' |')
    write_report(args, summary=summary, runs=results)


def print_profiles(results) -> None:
    for key, runs in results.items():
        name = ' '.join(key) if isinstance(key, tuple) else key
        for part in ('forward', 'train'):
            shares = runs[0].get(f'profile_{part}')
            if shares:
                print(f'\n{name}, {"forward" if part == "forward" else "training step"}: share of CPU time\n')
                print('| op | share |\n|---|---|')
                for op, share in shares.items():
                    print(f'| `{op}` | {100 * share:.1f}% |')


def parse_modes(args, parser) -> dict:
    """``--modes fp32,bf16+cl,bf16+compile`` -> {name: (precision, channels_last, compile backend)};
    without ``--modes``, the one mode ``--precision`` / ``--channels-last`` / ``--compile`` give."""
    if not args.modes:
        return {args.precision: (args.precision, args.channels_last, args.compile)}
    modes = {}
    for name in args.modes.split(','):
        precision, *flags = name.split('+')
        if precision not in ('fp32', 'bf16', 'fp16') or set(flags) - {'cl', 'compile'}:
            parser.error(f'--modes: {name!r} is not PRECISION[+cl][+compile] with PRECISION fp32, bf16 or fp16')
        modes[name] = (precision, 'cl' in flags, (args.compile or 'inductor') if 'compile' in flags else None)
    return modes


def print_modes_table(args, models, modes, results, keys) -> None:
    """One row per model and mode: ratios against the first model in the same mode, and the
    speed-up of each mode over the same model's first mode (all from the same run)."""
    summary = {key: {k: statistics.median(x[k] for x in rs) for k in keys} for key, rs in results.items()}
    first = next(iter(modes))
    base = models[0] if args.config or 'reference' not in models else 'reference'
    what = args.config or f'{FAMILIES[args.family]}-{args.arch}'
    print(f'\n{what} on {args.device}, forward 1x3x{args.size}x{args.size}, train step '
          f'{args.batch}x3x{args.size}x{args.size}, {args.threads} threads, median of {args.rounds} processes x '
          f'{args.iters} iterations; "vs {base}": same mode; "speed-up": over the same model in {first}\n')
    print(f'| model | mode | forward (s) | vs {base} | speed-up | train step (s) | vs {base} | speed-up | '
          'train peak (MiB) | saved for backward (MiB) |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for mode in modes:
        for m in models:
            s, b, own = summary[m, mode], summary[base, mode], summary[m, first]
            cells = []
            for k in ('forward_s', 'train_s'):
                cells += [f'{s[k]:.3f}', f'{s[k] / b[k]:.2f}x', f'{own[k] / s[k]:.2f}x']
            cells += [f"{s['peak_mib']:.0f}", f"{s['saved_mib']:.0f}"]
            print(f'| {m} | {mode} | ' + ' | '.join(cells) + ' |')
    write_report(args, summary={f'{m} {mode}': v for (m, mode), v in summary.items()},
                 runs={f'{m} {mode}': v for (m, mode), v in results.items()})
