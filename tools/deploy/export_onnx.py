"""Export a densedet segmentor (or a detector's backbone + neck) to ONNX and check it with onnxruntime.

    python tools/deploy/export_onnx.py CONFIG CKPT --shape H W [--out FILE] [--dynamic] [--dynamic-batch]
                                       [--dynamic-size] [--opset N] [--atol A] [--no-check]
    python tools/deploy/export_onnx.py configs/demo/denseunet3d_msd-liver_demo.py CKPT --shape 32 96 96

Input: float32 BGR pixels 0..255, (N, 3, H, W) (volumes: (N, C, D, H, W) after the config's test
transforms, one sliding window); output: logits at the input size (docs in
densedet/apis/onnx_export.py). Classes and palette of the checkpoint go into the ONNX metadata
(``classes``, ``palette``, JSON), read by tools/deploy/infer_onnx.py; a ``--dynamic-size`` graph
(H, W any multiples of 32) also records ``size_divisor`` and ``pad_pixel`` (the input pixel that
normalises to zero, what mmseg pads with). A volume model's export also carries its plans
(``volume``: the test pipeline's resampling and normalisation, window, overlap, Gaussian sigma,
mirroring, stride, label values; ``densedet.apis.onnx_export.volume_metadata``), so
tools/deploy/infer_onnx.py segments NIfTI files from the ONNX file alone. With onnxruntime installed
(``pip install -r requirements/deploy.txt``) the export is run on the CPU provider and the max abs
difference against PyTorch is printed (a ``--dynamic-size`` graph also at a second size);
``--atol`` makes a larger one an error.
"""
import argparse
import json
import os.path as osp

import numpy as np
import torch

import densedet  # noqa: F401
from densedet.apis import export_onnx, init_model
from densedet.apis.cli import run_tool
from densedet.apis.onnx_export import SIZE_DIVISOR, example_input, pad_pixel, volume_metadata, volume_size_divisor
from densedet.errors import BadConfigError


def compare_with_onnxruntime(model, wrapper, path, shape, seed=0):
    """Max abs difference between PyTorch and onnxruntime (CPU) on a seeded input."""
    import onnxruntime as ort
    x = example_input(model, shape, seed=seed)
    with torch.no_grad():
        ref = wrapper(x)
    ref = [ref] if isinstance(ref, torch.Tensor) else list(ref)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    outs = session.run(None, {'input': x.numpy()})
    return max(float(np.abs(o - r.numpy()).max()) for o, r in zip(outs, ref))


def add_metadata(path, meta, extra=None):
    import onnx
    model = onnx.load(path)
    entries = {key: [list(v) if isinstance(v, tuple) else v for v in meta[key]]
               for key in ('classes', 'palette') if meta.get(key) is not None}
    entries.update(extra or {})
    for key, value in entries.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    external = osp.isfile(f'{path}.data')  # weights over protobuf's 2 GB limit stay beside the graph
    onnx.save(model, path, save_as_external_data=external, location=f'{osp.basename(path)}.data' if external else None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', help='omit for random weights')
    parser.add_argument('--shape', type=int, nargs='+', required=True, help='H W (volumes: D H W)')
    parser.add_argument('--out', help='default: the config name + .onnx')
    parser.add_argument('--dynamic', action='store_true', help='both of the next two (2D models)')
    parser.add_argument('--dynamic-batch', action='store_true', help='free batch size')
    parser.add_argument('--dynamic-size', action='store_true',
                        help=f'free H and W, multiples of {SIZE_DIVISOR} (volumes: D, H and W, multiples of the '
                        "network's stride; --shape is the example size)")
    parser.add_argument('--opset', type=int, default=18, help="18: the exporter's own (no version conversion)")
    parser.add_argument('--atol', type=float, help='fail when onnxruntime differs from PyTorch by more')
    parser.add_argument('--no-check', action='store_true', help='skip the onnxruntime comparison')
    args = parser.parse_args(argv)
    if args.dynamic:
        args.dynamic_batch = args.dynamic_size = True
    model = init_model(args.config, args.checkpoint)
    out = args.out or osp.splitext(osp.basename(args.config))[0] + '.onnx'
    extra = {}
    if model.kind == 'volume':  # the plans travel with the network (before the export: fails early)
        extra['volume'] = volume_metadata(model)
        roi = extra['volume']['roi_size']
        if roi and not args.dynamic_size and list(args.shape) != list(roi):
            raise BadConfigError(f'--shape {" ".join(map(str, args.shape))}: the config slides windows of '
                                 f'{" ".join(map(str, roi))} (test_cfg.roi_size); export that shape, or use '
                                 '--dynamic-size')
    elif args.dynamic_size:
        extra.update(size_divisor=SIZE_DIVISOR, pad_pixel=pad_pixel(model))
    wrapper = export_onnx(model, out, args.shape, opset=args.opset, dynamic_batch=args.dynamic_batch,
                          dynamic_size=args.dynamic_size)
    add_metadata(out, model.dataset_meta or {}, extra)
    print(f'wrote {out} ({osp.getsize(out) / 2**20:.1f} MiB)')
    if model.kind == 'det':
        print('detector: exported backbone + neck (feature maps); the RPN / RoI heads and NMS are not '
              'exported (data-dependent RoI counts; RoIAlign / NMS need mmdeploy-style custom ops)')
    if args.no_check:
        return None
    # A free-size graph is checked off its example size too: that is where exports go wrong.
    shapes = [args.shape]
    if args.dynamic_size:
        steps = volume_size_divisor(model) if model.kind == 'volume' else [SIZE_DIVISOR] * len(args.shape)
        shapes.append([s + d * (i + 1) for i, (s, d) in enumerate(zip(args.shape, steps))])
    diff = max(compare_with_onnxruntime(model, wrapper, out, shape) for shape in shapes)
    sizes = ' and '.join('x'.join(map(str, shape)) for shape in shapes)
    print(f'onnxruntime vs PyTorch: max abs difference {diff:.3g} (input {sizes})')
    if args.atol is not None and diff > args.atol:
        raise BadConfigError(f'max abs difference {diff:.3g} > --atol {args.atol}: onnxruntime and PyTorch disagree')
    return diff


if __name__ == '__main__':
    run_tool(main)
