"""Segment NIfTI volumes with a trained volume config (no dataset needed).

    python tools/infer_volume.py CONFIG CHECKPOINT INPUT [INPUT ...] --out-dir DIR [--tta] [--amp] [--device cpu]

Each INPUT (``.nii`` / ``.nii.gz``) goes through the config's test pipeline and the model's
sliding-window inference; the prediction is written to ``DIR/<input name>`` on the input's
voxel grid with its affine and header.
"""
import argparse
import os.path as osp

import densedet  # noqa: F401
from densedet.apis import inference_volume, init_volume_model
from densedet.apis.cli import run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Segment NIfTI volumes')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('inputs', nargs='+', help='NIfTI files')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--tta', action='store_true', help='mirror test-time augmentation')
    parser.add_argument('--amp', action='store_true', help='low precision: bfloat16 autocast on CPU, float16 on GPU')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    model = init_volume_model(args.config, args.checkpoint, device=args.device, tta=args.tta)
    written = []
    for path in args.inputs:
        out = osp.join(args.out_dir, osp.basename(path))
        inference_volume(model, path, out_path=out, amp=args.amp)
        print(f'{path} -> {out}')
        written.append(out)
    return written


if __name__ == '__main__':
    run_tool(main)
