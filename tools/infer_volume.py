"""Segment NIfTI volumes with a trained volume config, or with an inference recipe (no dataset needed).

    python tools/infer_volume.py CONFIG CHECKPOINT INPUT [INPUT ...] --out-dir DIR [--tta] [--amp] [--device cpu]
    python tools/infer_volume.py --recipe RECIPE INPUT [INPUT ...] --out-dir DIR [--amp] [--device cpu]

Each INPUT (``.nii`` / ``.nii.gz``) goes through the config's test pipeline and the model's
sliding-window inference; the prediction is written to ``DIR/<input name>`` on the input's
voxel grid with its affine and header. A recipe (tools/find_best_configuration.py) predicts with
its ensemble (the probabilities of every fold of every member averaged), its TTA and its
post-processing.
"""
import argparse
import os.path as osp

import densedet  # noqa: F401
from densedet.apis import inference_volume, init_volume_model
from densedet.apis.cli import run_tool
from densedet.apis.ensemble import load_recipe, predict_with_recipe
from densedet.errors import BadInputError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Segment NIfTI volumes',
                                     usage='%(prog)s [CONFIG CHECKPOINT | --recipe RECIPE] INPUT [INPUT ...] '
                                     '--out-dir DIR [options]')
    parser.add_argument('args', nargs='+', metavar='[CONFIG CHECKPOINT] INPUT', help='NIfTI files')
    parser.add_argument('--recipe', help='an inference recipe (tools/find_best_configuration.py) instead of '
                        'CONFIG CHECKPOINT')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--tta', action='store_true', help='mirror test-time augmentation (a recipe says its own)')
    parser.add_argument('--amp', action='store_true', help='low precision: bfloat16 autocast on CPU, float16 on GPU')
    args = parser.parse_args(argv)
    if args.recipe:
        args.config, args.checkpoint, args.inputs = None, None, args.args
    elif len(args.args) < 3:
        raise BadInputError('give CONFIG CHECKPOINT INPUT [INPUT ...], or --recipe RECIPE INPUT [INPUT ...]')
    else:
        args.config, args.checkpoint, args.inputs = args.args[0], args.args[1], args.args[2:]
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.recipe:
        return predict_with_recipe(load_recipe(args.recipe), args.inputs, args.out_dir, device=args.device,
                                   amp=args.amp)
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
