"""Speed and memory of densedet backbones (or whole configs) against their references.

    python tools/analysis/benchmark.py --arch tiny --size 512 --threads 2 [--rounds 3]
    python tools/analysis/benchmark.py --config configs/upernet_rdnet_ade20k.py --size 512
    python tools/analysis/benchmark.py --arch tiny --precision bf16 [--channels-last] [--compile [BACKEND]]

    python tools/analysis/benchmark.py --family densenet --arch 121 --size 512
    python tools/analysis/benchmark.py --detector --size 512 [--rounds 3]
    python tools/analysis/benchmark.py --unetpp --size 256 [--rounds 5]
    python tools/analysis/benchmark.py --volume --size 128 [--rounds 3]
    python tools/analysis/benchmark.py --onnx [--rounds 3]      # needs requirements/deploy.txt
    python tools/analysis/benchmark.py --volume-data [--nnunet-python .venv-nnunet/bin/python]

Backbone mode compares, with the same weights and inputs: ``densedet`` (the densedet
backbone), ``densedet-cp`` (the same with ``with_cp=True``), ``densedet-plain`` (the same without
its CPU kernel choices, ``densedet/models/layers/cpu_paths.py``; on request), ``reference`` (timm's
``rdnet_*``, ``ese_vovnet*b``, ``dla*``, ``dpn*``, or torchvision's ``densenet*``; HarDNet has
none) and, for RDNet, ``convnext`` (timm ``convnext_tiny``, a non-dense baseline).
For each it measures

* forward latency of a ``1x3xSxS`` batch (eval, no grad);
* one training step (forward + backward of the four feature maps' mean) on ``Bx3xSxS``;
* the training step's peak memory: the rise of the process's peak RSS over the
  memory held after building the model (each measurement runs in a fresh process);
* the bytes autograd keeps for backward (saved tensors, deduplicated by storage).

Detector mode (``--detector``) compares Mask R-CNN + FPN with RDNet-T
(``configs/mask-rcnn_rdnet_coco.py``) against the same detector, heads and train_cfg
unchanged, with mmdet's ResNet-50 backbone (``mmdet::_base_/models/mask-rcnn_r50_fpn.py``'s
``ResNet``): ``predict`` latency on one ``SxS`` image (forward = backbone, neck, RPN,
RoI heads, post-processing) and the training step (``loss`` + backward, two
ground-truth instances per image) on ``B`` images.

UNet++ mode (``--unetpp``) times inference of the paper's UNet++ (plain encoder 32-512,
L = 4, ``configs/unetpp/unetpp_drive.py``'s model) on one ``SxS`` image: the full network in
'accurate' mode (mean of the four heads) and pruned to depth L4..L1 (``prune_unetpp``:
encoder and nested nodes above the level are skipped); same process, same weights, the
variants interleaved ``--rounds`` times.

Volume mode (``--volume``) times Gaussian sliding-window inference of a 3D network (the
demo's 3D DenseUNet, ``configs/demo/denseunet3d_msd-liver_demo.py``; ``--volume-net conv``:
a single 3x3x3 conv, so that the stitching itself dominates) on one
``(S/2) x S x S`` volume with ``(S/4) x (S/2) x (S/2)`` windows, overlap 0.5, 2 windows per
batch: ``densedet`` (the segmentor's ``inference``: MONAI's stitching with densedet's window
predictor around it) against ``monai`` (``monai.inferers.sliding_window_inference`` called
directly on the same network, weights, volume and settings): what densedet's inference path
costs on top of MONAI's. Times are paired: both run alternately in one process (speed differs more from
process to process than between the two); the peak RSS rise over the memory held before
inference is measured in a fresh process per implementation.

ONNX mode (``--onnx``) exports UperNet-RDNet-T (512x512) and FC-DenseNet103 (360x480) with
``densedet.apis.export_onnx`` and times onnxruntime (CPU provider, ``--threads`` intra-op
threads) against PyTorch eager fp32 on the same graph, weights and image, alternating in one
process (median of ``--rounds`` x ``--iters``), with the max abs difference of the logits.

Volume data mode (``--volume-data``): the training data path at real size, today's NIfTI
pipeline vs densedet's preprocessed path vs nnU-Net v2 (tools/analysis/benchmark_volume_data.py).

``--precision bf16|fp16`` runs forward and training step under autocast (bf16 on CPU, either on
CUDA), ``--channels-last`` converts weights and inputs to NHWC, ``--compile`` wraps the model in
``torch.compile`` (the warm-up calls compile; only compiled calls are timed); backbone and config
modes.

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


CONVNEXT_T_CHANNELS = [96, 192, 384, 768]
FAMILIES = {'rdnet': 'RDNet', 'densenet': 'DenseNet', 'vovnet': 'VoVNet', 'dla': 'DLA', 'dpn': 'DPN',
            'hardnet': 'HarDNet'}


def _build(name: str, arch: str, config: str = None, family: str = 'rdnet'):
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


DETECTOR_CONFIG = os.path.join(ROOT, 'configs', 'mask-rcnn_rdnet_coco.py')
RESNET50 = dict(type='ResNet', depth=50, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
                norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True, style='pytorch')


def _detector_task(name: str, size: int, batch: int):
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


def _autocast(fn, precision: str, device: str):
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
        return _measure(args)


def _measure(args) -> dict:
    import torch
    torch.set_num_threads(args.threads)
    if getattr(args, 'detector', False):
        module, forward_fn, train_loss = _detector_task(args.worker, args.size, args.batch)
    else:
        fn, module = _build(args.worker, args.arch, args.config, args.family)
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
            fn = _autocast(fn, args.precision, args.device)

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
    base_rss = _rss_kib()
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
    saved = _saved_bytes(lambda _: train_loss(), None)
    result = dict(model=args.worker, forward_s=forward, train_s=statistics.median(times),
                  peak_mib=max(peak, 0) / 1024, saved_mib=saved / 2**20)
    if getattr(args, 'profile', False):
        module.eval()
        with torch.no_grad():
            result['profile_forward'] = _op_shares(forward_fn)
        module.train()
        result['profile_train'] = _op_shares(lambda: train_loss().backward())
    return result


def _op_kind(event) -> str:
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


def _op_shares(step, top: int = 8) -> dict:
    """Self CPU time of one call of ``step`` per op (torch.profiler), as shares of the total."""
    from torch.profiler import profile
    with profile(record_shapes=True) as prof:
        step()
    totals = {}
    for event in prof.events():
        kind = _op_kind(event)
        totals[kind] = totals.get(kind, 0.0) + event.self_cpu_time_total
    total = sum(totals.values())
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    return {kind: t / total for kind, t in ranked}


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
            base_rss = _rss_kib()
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


ONNX_MODELS = {'UperNet-RDNet-T': ('configs/upernet_rdnet_ade20k.py', (512, 512)),
               'FC-DenseNet103': ('configs/fcdensenet103_camvid.py', (360, 480))}


def onnx_vs_eager(threads: int, rounds: int, iters: int) -> dict:
    """Median latency of PyTorch eager (fp32, no grad) and onnxruntime (CPU provider, the same
    exported graph and weights) on one image, alternating in one process."""
    import tempfile

    import onnxruntime as ort

    import densedet  # noqa: F401
    from densedet.apis import export_onnx, init_model
    torch.set_num_threads(threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (config, shape) in ONNX_MODELS.items():
            torch.manual_seed(0)
            model = init_model(os.path.join(ROOT, config))
            path = os.path.join(tmp, 'model.onnx')
            wrapper = export_onnx(model, path, shape)
            session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
            x = torch.rand(1, 3, *shape) * 255
            feed = {'input': x.numpy()}
            runs = {'eager': lambda: wrapper(x), 'onnxruntime': lambda: session.run(None, feed)}
            times = {k: [] for k in runs}
            with torch.no_grad():
                diff = float(abs(session.run(None, feed)[0] - wrapper(x).numpy()).max())
                for r in range(rounds):
                    for key in (list(runs) if r % 2 == 0 else list(reversed(runs))):
                        runs[key]()  # warm-up
                        for _ in range(iters):
                            t = time.perf_counter()
                            runs[key]()
                            times[key].append(time.perf_counter() - t)
            results[name] = dict(shape=shape, diff=diff, **{k: statistics.median(v) for k, v in times.items()})
    return results


def main():
    if '--volume-data' in sys.argv[1:]:  # its own options: tools/analysis/benchmark_volume_data.py
        from benchmark_volume_data import main as volume_data
        return volume_data([a for a in sys.argv[1:] if a != '--volume-data'])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--family', default='rdnet', choices=sorted(FAMILIES),
                        help='backbone family; compared against its timm/torchvision implementation')
    parser.add_argument('--arch', default='tiny')
    parser.add_argument('--config', help='benchmark a whole model built from this config instead')
    parser.add_argument('--unetpp', action='store_true', help='UNet++ inference, full vs pruned L4..L1')
    parser.add_argument('--onnx', action='store_true',
                        help='onnxruntime vs PyTorch eager: UperNet-RDNet-T 512x512, FC-DenseNet103 360x480')
    parser.add_argument('--volume', action='store_true',
                        help='3D sliding-window inference: densedet against MONAI (voxels/s, peak memory)')
    parser.add_argument('--volume-net', default='demo', choices=['demo', 'conv'],
                        help="--volume's network: the demo 3D DenseUNet, or one 3x3x3 conv (stitching cost)")
    parser.add_argument('--detector', action='store_true',
                        help='Mask R-CNN RDNet-T against Mask R-CNN ResNet-50 (predict, train step)')
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--batch', type=int, default=2, help='batch of the training step')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--iters', type=int, default=3, help='timed iterations per process')
    parser.add_argument('--rounds', type=int, default=3, help='processes per model, interleaved')
    parser.add_argument('--models', default=None, help='comma list; default: all that apply')
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument('--precision', default='fp32', choices=['fp32', 'bf16', 'fp16'],
                        help='backbone / config mode: autocast dtype of forward and training step')
    parser.add_argument('--channels-last', action='store_true', help='backbone / config mode: NHWC weights + inputs')
    parser.add_argument('--device', default='cpu', help='backbone / config mode: cpu or cuda (peak memory: '
                        'allocated device memory instead of RSS)')
    parser.add_argument('--compile', nargs='?', const='inductor', default=None, metavar='BACKEND',
                        help='backbone / config mode: torch.compile the model (compilation not timed)')
    parser.add_argument('--modes', help='backbone / config mode: several modes side by side in one table, a comma '
                        'list of PRECISION[+cl][+compile], e.g. fp32,bf16,bf16+compile (default: the one mode '
                        '--precision / --channels-last / --compile give)')
    parser.add_argument('--profile', action='store_true', help='backbone / config mode: also the ops taking the '
                        "most CPU time (torch.profiler, one forward and one training step of each model's first round)")
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.volume and args.volume_net == 'demo' and args.size % 64:
        parser.error(f'--volume with the demo network: --size must be a multiple of 64 (its windows, S/4 x S/2 x '
                     f'S/2, must be multiples of the network\'s stride 4 x 32 x 32); got {args.size}')
    if args.worker:
        if args.volume:
            result = volume_inference(args.worker, args.size, args.threads, args.iters, args.volume_net)
        else:
            result = worker(args)
        print('RESULT ' + json.dumps(result))
        return
    if args.onnx:
        res = onnx_vs_eager(args.threads, args.rounds, args.iters)
        print(f'\nfp32 inference on one image, {args.threads} threads, median of {args.rounds} rounds x '
              f'{args.iters} iterations (random weights, same graph)\n')
        print('| model | input | PyTorch eager (s) | onnxruntime (s) | onnxruntime / eager | max abs diff |')
        print('|---|---|---|---|---|---|')
        for name, r in res.items():
            print(f"| {name} | {r['shape'][0]}x{r['shape'][1]} | {r['eager']:.4f} | {r['onnxruntime']:.4f} | "
                  f"{r['onnxruntime'] / r['eager']:.2f} | {r['diff']:.2g} |")
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(dict(args=vars(args), summary=res), f, indent=1)
        return
    if args.unetpp:
        res = unetpp_pruning(args.size, args.threads, args.rounds, args.iters)
        full = res['accurate (L4, 4 heads)']
        print(f'\nUNet++ (32-512, L=4) inference on 1x3x{args.size}x{args.size}, {args.threads} threads, '
              f'median of {args.rounds} rounds x {args.iters} iterations\n')
        print('| variant | forward (s) | speed-up vs accurate |')
        print('|---|---|---|')
        for name, t in res.items():
            print(f'| {name} | {t:.4f} | {full / t:.2f}x |')
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(dict(args=vars(args), summary=res), f, indent=1)
        return
    if args.models:
        models = args.models.split(',')
    elif args.volume:
        models = ['time', 'densedet', 'monai']
    elif args.detector:
        models = ['rdnet', 'resnet50']
    elif args.config or args.family == 'hardnet':  # no upstream implementation to compare with
        models = ['densedet', 'densedet-cp']
    elif args.family == 'rdnet':
        models = ['densedet', 'densedet-cp', 'reference', 'convnext']
    else:
        models = ['densedet', 'densedet-cp', 'reference']
    modes = _parse_modes(args, parser)
    results = {(m, mode): [] for mode in modes for m in models}
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    for r in range(args.rounds):
        for mode in modes:
            precision, channels_last, compile_backend = modes[mode]
            for m in models:
                cmd = [sys.executable, __file__, '--worker', m, '--family', args.family, '--arch', args.arch,
                       '--size', str(args.size),
                       '--batch', str(args.batch), '--threads', str(args.threads), '--iters', str(args.iters)]
                if args.config:
                    cmd += ['--config', args.config]
                cmd += ['--precision', precision, '--device', args.device]
                cmd += ['--channels-last'] if channels_last else []
                cmd += ['--compile', compile_backend] if compile_backend else []
                cmd += ['--profile'] if args.profile and r == 0 else []
                if args.detector:
                    cmd.append('--detector')
                if args.volume:
                    cmd += ['--volume', '--volume-net', args.volume_net]
                out = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if out.returncode != 0:
                    raise RuntimeError(f'worker {m} ({mode}) failed:\n{out.stderr[-3000:]}')
                line = [ln for ln in out.stdout.splitlines() if ln.startswith('RESULT ')][-1]
                results[m, mode].append(json.loads(line[7:]))
                print(f'round {r + 1}/{args.rounds} {m} {mode}: {results[m, mode][-1]}', file=sys.stderr, flush=True)
    if len(modes) == 1:
        results = {m: rs for (m, _), rs in results.items()}
    if args.volume:
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
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(dict(args=vars(args), summary=summary, paired_ratio=paired, runs=results), f, indent=1)
        return
    keys = ('forward_s', 'train_s', 'peak_mib', 'saved_mib')
    if args.profile:
        _print_profiles(results)
    if len(modes) > 1:
        return _print_modes_table(args, models, modes, results, keys)
    summary = {m: {k: statistics.median(x[k] for x in rs) for k in keys} for m, rs in results.items()}
    base = 'reference' if 'reference' in summary else 'resnet50' if 'resnet50' in summary else models[0]
    what = 'Mask R-CNN (predict as forward)' if args.detector else args.config or f'{FAMILIES[args.family]}-{args.arch}'
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


def _print_profiles(results) -> None:
    for key, runs in results.items():
        name = ' '.join(key) if isinstance(key, tuple) else key
        for part in ('forward', 'train'):
            shares = runs[0].get(f'profile_{part}')
            if shares:
                print(f'\n{name}, {"forward" if part == "forward" else "training step"}: share of CPU time\n')
                print('| op | share |\n|---|---|')
                for op, share in shares.items():
                    print(f'| `{op}` | {100 * share:.1f}% |')


def _parse_modes(args, parser) -> dict:
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


def _print_modes_table(args, models, modes, results, keys) -> None:
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
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), summary={f'{m} {mode}': v for (m, mode), v in summary.items()},
                           runs={f'{m} {mode}': v for (m, mode), v in results.items()}), f, indent=1)

if __name__ == '__main__':
    main()
