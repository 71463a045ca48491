"""Segment or detect on images, a folder, a glob or a video with a trained 2D config (no dataset).

    python tools/infer.py CONFIG CHECKPOINT INPUT [--out-dir DIR] [--opacity A] [--score-thr T] [--device D] [--amp]
                                                  [--cfg-options k=v ...]

INPUT: an image, a folder of images, a glob (quoted: 'frames/*.png') or a video file. Writes to
DIR (default ``work_dirs/infer``): ``overlays/`` (PNG per image, MP4 per video) and the raw
predictions: ``pred/*.png`` palette label maps (segmentation) or ``results.json`` in COCO results
format (detection; ``category_id`` is the dataset's COCO id, so the file scores against the
dataset's annotation file). Unreadable files are reported, skipped and listed at the end; when no
input could be read the run fails (exit 1). CHECKPOINT may be a ``.pth`` or a ``.safetensors``
file (tools/publish_model.py) and must fit the config's model exactly. Volume configs:
tools/infer_volume.py.
"""
import argparse

from mmengine.config import DictAction

import densedet  # noqa: F401
from densedet.apis import init_model, segment_inputs
from densedet.apis.cli import run_tool
from densedet.apis.config import load_config
from densedet.apis.image_inference import model_kind
from densedet.errors import BadConfigError, BadInputError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('input', help='image, folder, glob or video')
    parser.add_argument('--out-dir', default='work_dirs/infer')
    parser.add_argument('--opacity', type=float, default=0.5, help='overlay opacity of the prediction (0..1)')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detection: drawn / written boxes above it')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--amp', action='store_true', help='low precision: bfloat16 autocast on CPU, float16 on GPU')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (xxx=yyy format)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if model_kind(cfg) == 'volume':  # before its checkpoint is read
        raise BadConfigError(f'{args.config} is a volume config: use tools/infer_volume.py')
    model = init_model(cfg, args.checkpoint, device=args.device)
    summary = segment_inputs(model, args.input, args.out_dir, opacity=args.opacity, score_thr=args.score_thr,
                             amp=args.amp)
    print(f"\n{summary['images']} images in {summary['seconds']:.1f} s ({summary['images_per_s']:.2f} images/s); "
          f"overlays: {summary['overlays']}; " +
          (f"predictions: {summary['predictions']}" if 'predictions' in summary else f"results: {summary['results']}"))
    if summary.get('coco_ids') == 'class index':
        print('category_id = class index: neither the checkpoint (dataset_meta cat_ids) nor the config\'s test '
              'annotation file gives COCO category ids')
    if summary['failed']:
        print(f"{len(summary['failed'])} input(s) skipped:")
        for path, reason in summary['failed']:
            print(f'  {path}: {reason}')
    if not summary['images']:
        raise BadInputError(f'none of the {summary["inputs"]} input(s) at {args.input!r} could be read '
                            f'(first: {summary["failed"][0][0]}: {summary["failed"][0][1]})')
    return summary


if __name__ == '__main__':
    run_tool(main)
