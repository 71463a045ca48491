"""Paper-claims mode of tools/analysis/benchmark.py: the seed papers' headline ratios, measured with
densedet's own implementations side by side in one process (same input, same precision, models timed in
interleaved rounds, medians).

For every pair: the time ratio (forward, or a training step where the claim is about training), the
ratio of multiply-adds (mmengine's counter), of parameters, and of *memory traffic*: the bytes every
operator reads and writes during one forward (its tensor inputs and outputs, weights included; views
move nothing and are skipped, a concatenation counts), HarDNet's argument for why time follows traffic
rather than MACs. A ratio below 1 means the first model is cheaper.
"""
import statistics
import time
from typing import Callable, Dict, Tuple

import torch
from bench_backbone import saved_bytes
from bench_common import ROOT, write_report
from torch.utils._python_dispatch import TorchDispatchMode


class MeasuredPath(torch.nn.Module):
    """``fn`` (a module, or a method of one) as a module of its own, for the MACs counter."""

    def __init__(self, module: torch.nn.Module, fn: Callable):
        super().__init__()
        self.module = module
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _tensor_bytes(values) -> int:
    total = 0
    for v in values:
        if isinstance(v, torch.Tensor):
            total += v.numel() * v.element_size()
        elif isinstance(v, (list, tuple)):
            total += _tensor_bytes(v)
    return total


class TrafficCounter(TorchDispatchMode):
    """Sums the bytes of every operator's tensor inputs (read) and outputs (written)."""

    def __init__(self):
        super().__init__()
        self.read = self.written = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        returns = func._schema.returns
        is_view = bool(returns) and returns[0].alias_info is not None and not returns[0].alias_info.is_write
        if not is_view:
            self.read += _tensor_bytes(list(args) + list((kwargs or {}).values()))
            self.written += _tensor_bytes(out if isinstance(out, (list, tuple)) else [out])
        return out


def memory_traffic(fn: Callable[[], object]) -> int:
    """Bytes read + written by the operators of one call of ``fn`` (no autograd)."""
    with torch.no_grad(), TrafficCounter() as counter:
        fn()
    return counter.read + counter.written


def _config_model(config: str, **overrides):
    """The model of ``config`` (``overrides``: mmengine ``--cfg-options``-style dotted keys), SyncBN as BN."""
    from mmengine.config import Config
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    from densedet.registry import MODELS
    cfg = Config.fromfile(f'{ROOT}/{config}')
    cfg.merge_from_dict(overrides)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return revert_sync_batchnorm(MODELS.build(cfg.model))


def _segmentor(config: str, num_classes: int = 19):
    model = _config_model(config, **{'model.decode_head.num_classes': num_classes,
                                     'model.decode_head.sampler': None})
    return model, model._forward


def _detector_features(config: str, **overrides):
    model = _config_model(config, **overrides)
    return model, model.extract_feat  # backbone + FPN: the RPN / RoI heads are the same for both


def _backbone(type_: str, **kwargs):
    from densedet.registry import MODELS
    model = MODELS.build(dict(type=type_, **kwargs))
    return model, model


def _torchvision_resnet50():
    import torchvision
    model = torchvision.models.resnet50(weights=None)
    trunk = torch.nn.Sequential(*list(model.children())[:-2])  # up to the stride-32 maps, as a backbone
    return trunk, trunk


def _timm_features(name: str, size: int):
    import timm
    kwargs = dict(img_size=size) if name.startswith('swin') else {}
    model = timm.create_model(name, pretrained=False, **kwargs)
    return model, model.forward_features


# name -> (builder(size) -> (module, fn), input shape (h, w) from the --size S)
MODELS: Dict[str, Tuple[Callable, Callable[[int], Tuple[int, int]]]] = {
    'FC-HarDNet-70': (lambda s: _segmentor('configs/hardnet/fchardnet70_cityscapes.py'), lambda s: (s, 2 * s)),
    'FC-DenseNet-103': (lambda s: _segmentor('configs/fcdensenet103_camvid.py'), lambda s: (s, 2 * s)),
    'HarDNet-68': (lambda s: _backbone('HarDNet', arch='68'), lambda s: (s, s)),
    'ResNet-50': (lambda s: _torchvision_resnet50(), lambda s: (s, s)),
    'Mask R-CNN VoVNetV2-39': (lambda s: _detector_features('configs/vovnet/mask-rcnn_vovnet39_fpn_1x_coco.py'),
                               lambda s: (s, s)),
    'Mask R-CNN DenseNet-201': (lambda s: _detector_features('configs/densenet/mask-rcnn_densenet121_fpn_1x_coco.py',
                                                             **{'model.backbone.arch': '201',
                                                                'model.neck.in_channels': [256, 512, 1792, 1920]}),
                                lambda s: (s, s)),
    'CSPDenseNet-201': (lambda s: _backbone('DenseNet', arch='csp201'), lambda s: (s, s)),
    'DenseNet-201': (lambda s: _backbone('DenseNet', arch='201'), lambda s: (s, s)),
    'DenseNet-121 memory-efficient': (lambda s: _backbone('DenseNet', arch='121', with_cp=True), lambda s: (s, s)),
    'DenseNet-121': (lambda s: _backbone('DenseNet', arch='121'), lambda s: (s, s)),
    'RDNet-T': (lambda s: _backbone('RDNet', arch='tiny'), lambda s: (224, 224)),
    'ConvNeXt-T': (lambda s: _timm_features('convnext_tiny', 224), lambda s: (224, 224)),
    'Swin-T': (lambda s: _timm_features('swin_tiny_patch4_window7_224', 224), lambda s: (224, 224)),
}

# pair -> (first, second, what is timed, the paper's claim, the claimed time ratio first / second or None)
CLAIMS: Dict[str, Tuple[str, str, str, str, object]] = {
    'fchardnet': ('FC-HarDNet-70', 'FC-DenseNet-103', 'forward', 'HarDNet: 35 % less inference time', 0.65),
    'hardnet': ('HarDNet-68', 'ResNet-50', 'forward', 'HarDNet: 30 % less inference time', 0.70),
    'vovnet': ('Mask R-CNN VoVNetV2-39', 'Mask R-CNN DenseNet-201', 'forward', 'VoVNet: about 2x faster detector',
               0.5),
    'csp': ('CSPDenseNet-201', 'DenseNet-201', 'forward', 'CSPNet: about 20 % less computation', 0.8),
    'memory-efficient': ('DenseNet-121 memory-efficient', 'DenseNet-121', 'train',
                         'Pleiss et al.: +15-20 % time, activation memory linear in depth', 1.175),
    'rdnet-convnext': ('RDNet-T', 'ConvNeXt-T', 'forward', "RDNet: throughput on par with ConvNeXt-T (paper's table)",
                       None),
    'rdnet-swin': ('RDNet-T', 'Swin-T', 'forward', "RDNet: higher throughput than Swin-T (paper's table)", None),
}


def _build(name: str, size: int, batch: int, device: str = 'cpu'):
    builder, shape = MODELS[name]
    module, fn = builder(size)
    module.to(device)
    x = torch.randn(1, 3, *shape(size), device=device)
    xb = torch.randn(batch, 3, *shape(size), device=device)

    def forward():
        module.eval()
        with torch.no_grad():
            return fn(x)

    def loss(inputs=None):
        outs = fn(xb)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return sum(o.float().mean() for o in outs)

    def train():
        module.train()
        loss().backward()
        module.zero_grad(set_to_none=True)

    return module, fn, x, forward, train, loss


def measure(args) -> dict:
    """Every pair's ratios; models in each pair timed alternately over ``args.rounds`` rounds."""
    from mmengine.analysis import get_model_complexity_info
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sync = torch.cuda.synchronize if args.device.startswith('cuda') else (lambda: None)
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel('ERROR')  # the MACs counter's notes on uncalled heads
    rows = []
    pairs = args.pairs.split(',') if args.pairs else list(CLAIMS)
    unknown = sorted(set(pairs) - set(CLAIMS))
    if unknown:
        raise SystemExit(f'--pairs: unknown {unknown}; choose from {", ".join(CLAIMS)}')
    for first, second, kind, claim, paper in (CLAIMS[p] for p in pairs):
        stats = {}
        built = {name: _build(name, args.size, args.batch, args.device) for name in (first, second)}
        for name, (module, fn, x, forward, train, loss) in built.items():
            run = forward if kind == 'forward' else train
            run()  # warm-up
            module.eval()
            # count the measured path (segmentor / detector features), not the data pre-processing
            info = get_model_complexity_info(MeasuredPath(module, fn), inputs=(x, ), show_table=False,
                                             show_arch=False)
            stats[name] = dict(run=run, times=[], macs=info['flops'],
                               params=sum(p.numel() for p in module.parameters()),
                               traffic=memory_traffic(forward))
            if kind == 'train':
                module.train()
                stats[name]['saved'] = saved_bytes(lambda _: loss(), None)
                module.zero_grad(set_to_none=True)
        for _ in range(args.rounds):
            for name in (first, second):
                for _ in range(args.iters):
                    sync()
                    t = time.perf_counter()
                    stats[name]['run']()
                    sync()
                    stats[name]['times'].append(time.perf_counter() - t)
        a, b = stats[first], stats[second]
        row = dict(first=first, second=second, timed=kind, claim=claim, paper_ratio=paper,
                   first_s=statistics.median(a['times']), second_s=statistics.median(b['times']),
                   macs_ratio=a['macs'] / b['macs'], params_ratio=a['params'] / b['params'],
                   traffic_ratio=a['traffic'] / b['traffic'], first_gmacs=a['macs'] / 1e9,
                   first_traffic_gib=a['traffic'] / 2**30, second_traffic_gib=b['traffic'] / 2**30)
        row['time_ratio'] = row['first_s'] / row['second_s']
        if kind == 'train':
            row['saved_ratio'] = a['saved'] / b['saved']
        rows.append(row)
        print(f"{first} / {second}: time {row['time_ratio']:.2f}x, MACs {row['macs_ratio']:.2f}x, traffic "
              f"{row['traffic_ratio']:.2f}x", flush=True)
        del built, stats
    return dict(rows=rows)


def report(args, result: dict) -> None:
    print(f'\nsize {args.size} (segmentors {args.size}x{2 * args.size}; RDNet / ConvNeXt / Swin at 224), '
          f'{args.device}, {args.threads} threads, fp32, median of {args.rounds} interleaved rounds x '
          f'{args.iters} iterations\n')
    print('| first / second | timed | paper claims | claimed time ratio | measured time ratio | MACs ratio '
          '| memory traffic ratio | params ratio |')
    print('|---|---|---|---|---|---|---|---|')
    for r in result['rows']:
        paper = '-' if r['paper_ratio'] is None else f"{r['paper_ratio']:.2f}"
        timed = r['timed'] + (f" (saved for backward {r['saved_ratio']:.2f}x)" if 'saved_ratio' in r else '')
        print(f"| {r['first']} / {r['second']} | {timed} | {r['claim']} | {paper} | {r['time_ratio']:.2f} "
              f"({r['first_s'] * 1e3:.0f} / {r['second_s'] * 1e3:.0f} ms) | {r['macs_ratio']:.2f} | "
              f"{r['traffic_ratio']:.2f} | {r['params_ratio']:.2f} |")
    write_report(args, summary=result['rows'])


def run(args) -> None:
    report(args, measure(args))
