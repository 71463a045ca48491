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
    python tools/analysis/benchmark.py --paper-claims --size 256 [--rounds 5 --iters 2]

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

Paper-claims mode (``--paper-claims``, tools/analysis/bench_paper_claims.py): the seed papers'
headline ratios (FC-HarDNet-70 / FC-DenseNet-103, HarDNet-68 / ResNet-50, VoVNetV2-39 / DenseNet-201
in Mask R-CNN, CSPDenseNet-201 / DenseNet-201, memory-efficient DenseNet, RDNet-T / ConvNeXt-T /
Swin-T) in one process: time, MACs, memory traffic and parameter ratios.

Each model of the other modes is measured in its own subprocess, ``--rounds`` times, models
interleaved; the table reports the median over rounds and ratios against ``reference``.
These numbers are relative: report ratios from one run, not absolute times.
"""
import argparse
import json
import sys

import bench_augmentation
import bench_backbone
import bench_onnx
import bench_paper_claims
import bench_unetpp
import bench_volume
import bench_volume_prediction
import benchmark_crossval_nnunet
import benchmark_volume_data
from bench_common import run_rounds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--family', default='rdnet', choices=sorted(bench_backbone.FAMILIES),
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
    parser.add_argument('--volume-data', action='store_true',
                        help='the volume training data path (tools/analysis/benchmark_volume_data.py; the other '
                        'options are its own)')
    parser.add_argument('--crossval-nnunet', action='store_true',
                        help='5-fold cross-validation against nnU-Net v2 on the synthetic hard task '
                        '(tools/analysis/benchmark_crossval_nnunet.py; the other options are its own)')
    parser.add_argument('--volume-prediction', action='store_true',
                        help='volume prediction at real size: peak memory and time against MONAI and nnU-Net v2 '
                        '(tools/analysis/bench_volume_prediction.py; the other options are its own)')
    parser.add_argument('--augmentation', action='store_true',
                        help="nnU-Net-class augmentation per sample, densedet's against nnU-Net v2's "
                        '(tools/analysis/bench_augmentation.py; the other options are its own)')
    parser.add_argument('--paper-claims', action='store_true',
                        help="the seed papers' headline ratios, measured side by side in one process")
    parser.add_argument('--pairs', help='paper-claims mode: a comma list of the pairs to measure (default all: '
                        'fchardnet, hardnet, vovnet, csp, memory-efficient, rdnet-convnext, rdnet-swin)')
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
    return parser


def main(argv=None):
    mode = argparse.ArgumentParser(add_help=False, allow_abbrev=False)  # --volume is not --volume-data
    mode.add_argument('--volume-data', action='store_true')
    mode.add_argument('--crossval-nnunet', action='store_true')
    mode.add_argument('--augmentation', action='store_true')
    mode.add_argument('--volume-prediction', action='store_true')
    known, rest = mode.parse_known_args(sys.argv[1:] if argv is None else argv)
    if known.volume_data:  # a mode with options of its own: the rest is handed on whole
        return benchmark_volume_data.main(rest)
    if known.crossval_nnunet:
        return benchmark_crossval_nnunet.main(rest)
    if known.augmentation:
        return bench_augmentation.main(rest)
    if known.volume_prediction:
        return bench_volume_prediction.main(rest)
    parser = build_parser()
    args = parser.parse_args(rest)
    if args.volume and args.volume_net == 'demo' and args.size % 64:
        parser.error(f'--volume with the demo network: --size must be a multiple of 64 (its windows, S/4 x S/2 x '
                     f'S/2, must be multiples of the network\'s stride 4 x 32 x 32); got {args.size}')
    if args.worker:  # one measurement in this fresh process
        result = (bench_volume.volume_inference(args.worker, args.size, args.threads, args.iters, args.volume_net)
                  if args.volume else bench_backbone.worker(args))
        print('RESULT ' + json.dumps(result))
        return result
    if args.paper_claims:
        return bench_paper_claims.run(args)
    if args.onnx:
        return bench_onnx.run(args)
    if args.unetpp:
        return bench_unetpp.run(args)
    if args.volume:
        models = args.models.split(',') if args.models else ['time', 'densedet', 'monai']
        options = ['--size', str(args.size), '--threads', str(args.threads), '--iters', str(args.iters), '--volume',
                   '--volume-net', args.volume_net]
        results = run_rounds(args, __file__, models, ['fp32'], lambda mode, r: options)
        return bench_volume.report(args, results)
    models = bench_backbone.default_models(args)
    modes = bench_backbone.parse_modes(args, parser)
    results = run_rounds(args, __file__, models, modes, bench_backbone.worker_args(args, modes))
    return bench_backbone.report(args, models, modes, results)


if __name__ == '__main__':
    main()
