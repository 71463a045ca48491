"""Segment NIfTI volumes with a trained volume config, or with an inference recipe (no dataset needed).

    python tools/infer_volume.py CONFIG CHECKPOINT INPUT [INPUT ...] --out-dir DIR [options]
    python tools/infer_volume.py --recipe RECIPE INPUT [INPUT ...] --out-dir DIR [--folds 0 1 ...] [options]

INPUT: NIfTI files, folders of them (nnU-Net's ``CASE_0000.nii.gz`` channel files are grouped per
case) or ``.txt`` case lists (one case per line). Each case goes through the config's test
pipeline and the model's sliding-window inference; the prediction is written to
``DIR/<input name>`` (``DIR/CASE.nii.gz`` for channel files) on the input's voxel grid with its
affine and header. Cases already predicted in DIR are skipped (``--overwrite`` predicts them
again); unreadable cases are listed at the end, and the exit status is 1 when none succeeded.

Speed settings: ``--overlap`` of neighbouring windows, ``--mirror-axes`` (mirroring TTA over those
spatial axes, 0 = D, 1 = H, 2 = W, every combination; no values: off), ``--folds`` (a recipe's
subset), ``--amp``. A recipe (tools/find_best_configuration.py) predicts with its ensemble (the
probabilities of every fold of every member averaged), its TTA and its post-processing.
"""
import argparse

import densedet  # noqa: F401
from densedet.apis import inference_volume, init_volume_model
from densedet.apis.cli import run_tool
from densedet.apis.config import apply_speed_settings
from densedet.apis.ensemble import load_recipe, predict_with_recipe
from densedet.apis.volume_inference import find_cases, predict_cases
from densedet.errors import BadInputError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Segment NIfTI volumes',
                                     usage='%(prog)s [CONFIG CHECKPOINT | --recipe RECIPE] INPUT [INPUT ...] '
                                     '--out-dir DIR [options]')
    parser.add_argument('args', nargs='+', metavar='[CONFIG CHECKPOINT] INPUT',
                        help='NIfTI files, folders of them, or .txt case lists')
    parser.add_argument('--recipe', help='an inference recipe (tools/find_best_configuration.py) instead of '
                        'CONFIG CHECKPOINT')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--tta', action='store_true', help="mirror test-time augmentation: the config's flip_axes "
                        'or D, H, W and the in-plane pair (a recipe says its own)')
    parser.add_argument('--mirror-axes', type=int, nargs='*', metavar='AXIS',
                        help='mirroring TTA over these spatial axes (0 D, 1 H, 2 W), every combination as nnU-Net; '
                        'no values: off (overrides --tta and the recipe)')
    parser.add_argument('--overlap', type=float, help="overlap of neighbouring windows, [0, 1) (default: the "
                        "config's, 0.5)")
    parser.add_argument('--folds', type=int, nargs='+', help="a recipe's folds to use (default: all)")
    parser.add_argument('--amp', action='store_true', help='low precision: bfloat16 autocast on CPU, float16 on GPU')
    parser.add_argument('--overwrite', action='store_true', help='predict cases whose output exists again')
    args = parser.parse_args(argv)
    apply_speed_settings({}, mirror_axes=args.mirror_axes, overlap=args.overlap)  # checked before any work
    if args.recipe:
        args.config, args.checkpoint, args.inputs = None, None, args.args
    elif len(args.args) < 3:
        raise BadInputError('give CONFIG CHECKPOINT INPUT [INPUT ...], or --recipe RECIPE INPUT [INPUT ...]')
    else:
        args.config, args.checkpoint, args.inputs = args.args[0], args.args[1], args.args[2:]
        if args.folds is not None:
            raise BadInputError('--folds selects the folds of a --recipe; with CONFIG CHECKPOINT there is one model')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.recipe:
        return predict_with_recipe(load_recipe(args.recipe), args.inputs, args.out_dir, device=args.device,
                                   amp=args.amp, folds=args.folds, mirror_axes=args.mirror_axes,
                                   overlap=args.overlap, overwrite=args.overwrite)
    cases = find_cases(args.inputs)  # bad inputs fail before the model loads
    model = init_volume_model(args.config, args.checkpoint, device=args.device, tta=args.tta,
                              mirror_axes=args.mirror_axes, overlap=args.overlap)
    return predict_cases(lambda paths, out: inference_volume(model, paths, out_path=out, amp=args.amp), cases,
                         args.out_dir, overwrite=args.overwrite)['written']


if __name__ == '__main__':
    run_tool(main)
