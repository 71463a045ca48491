"""Segment or detect on images, a folder, a glob or a video with a trained 2D config (no dataset).

    python tools/infer.py CONFIG CHECKPOINT INPUT [--out-dir DIR] [--opacity A] [--score-thr T] [--device D] [--amp]

INPUT: an image, a folder of images, a glob (quoted: 'frames/*.png') or a video file. Writes to
DIR (default ``work_dirs/infer``): ``overlays/`` (PNG per image, MP4 per video) and the raw
predictions: ``pred/*.png`` palette label maps (segmentation) or ``results.json`` in COCO results
format (detection). Unreadable files are reported, skipped and listed at the end. Volume configs:
tools/infer_volume.py.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import densedet  # noqa: E402,F401
from densedet.apis import init_model, segment_inputs  # noqa: E402
from densedet.apis.cli import run_tool  # noqa: E402


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
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    model = init_model(args.config, args.checkpoint, device=args.device)
    if model.kind == 'volume':
        sys.exit(f'{args.config} is a volume config: use tools/infer_volume.py')
    summary = segment_inputs(model, args.input, args.out_dir, opacity=args.opacity, score_thr=args.score_thr,
                             amp=args.amp)
    print(f"\n{summary['images']} images in {summary['seconds']:.1f} s ({summary['images_per_s']:.2f} images/s); "
          f"overlays: {summary['overlays']}; " +
          (f"predictions: {summary['predictions']}" if 'predictions' in summary else f"results: {summary['results']}"))
    if summary['failed']:
        print(f"{len(summary['failed'])} input(s) skipped:")
        for path, reason in summary['failed']:
            print(f'  {path}: {reason}')
    return summary


if __name__ == '__main__':
    run_tool(main)
