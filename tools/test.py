"""Test (evaluate) a checkpoint of a densedet / mmseg / mmdet config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out PATH] [--show-dir DIR]
                                           [--tta] [--amp] [--compile [BACKEND]] [--cfg-options k=v ...]
                                           [--launcher ...]

``--out``: for segmentation configs a directory where the predicted label maps are
written as PNG (mmseg's ``IoUMetric(output_dir=...)``); for detection configs a prefix
for the COCO results json files ``<out>.bbox.json`` / ``<out>.segm.json`` (CocoMetric's
``outfile_prefix``; evaluation still runs), or, ending in ``.pkl``, a pickle of the raw
results (mmdet's ``DumpDetResults``).
``--show-dir``: per-image visualizations (prediction overlays), relative to the work dir.
"""
import argparse

from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import densedet  # noqa: F401
from densedet.apis.cli import add_common_args, close_process_group, parse_common, run_tool
from densedet.apis.compile import add_compile_arg, compile_model
from densedet.apis.config import enable_test_amp, load_config, prepare_config, setup_test_outputs
from densedet.apis.precision import inference_autocast
from densedet.engine.checkpoint import load_strictly


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the evaluation metrics')
    parser.add_argument('--out', help='where to write the predictions (see module docstring)')
    parser.add_argument('--show', action='store_true', help='show prediction results in a window')
    parser.add_argument('--show-dir', help='directory (under the work dir) for painted predictions')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation (cfg.tta_pipeline)')
    parser.add_argument('--amp', action='store_true',
                        help='low precision: bfloat16 autocast on CPU, float16 on GPU (detectors: backbone and neck; '
                        'the heads decode boxes in float32)')
    add_compile_arg(parser)
    add_common_args(parser)
    return parse_common(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = prepare_config(load_config(args.config), args.config, work_dir=args.work_dir,
                         cfg_options=args.cfg_options, launcher=args.launcher, load_from=args.checkpoint)
    setup_test_outputs(cfg, out=args.out, show=args.show, show_dir=args.show_dir,
                       wait_time=args.wait_time, tta=args.tta)
    loop_amp = args.amp and enable_test_amp(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    load_strictly(runner, args.config)  # a checkpoint of another model is an error, not random weights
    if args.compile:
        parts = compile_model(runner.model, backend=args.compile, inference=True)
        print_log(f'compiled ({args.compile}): {", ".join(parts)}', logger='current')
    if cfg.get('default_scope') == 'mmdet' and args.out and args.out.endswith(('.pkl', '.pickle')):
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    with inference_autocast(runner.model, args.amp and not loop_amp):  # detectors: backbone + neck
        metrics = runner.test()
    close_process_group()
    return metrics


if __name__ == '__main__':
    run_tool(main)
