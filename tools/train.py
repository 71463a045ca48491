"""Train a densedet / mmseg / mmdet config with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp] [--compile [BACKEND]] [--cfg-options k=v ...]
                                 [--launcher none|pytorch|slurm|mpi]

Same flags as mmseg's and mmdet's tools/train.py; the registry scope comes from the
config's ``default_scope`` (``mmseg`` or ``mmdet``).
"""
import argparse
import logging

from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import densedet  # noqa: F401
from densedet.apis.cli import (  # (registers densedet and applies the compat fixes)
    add_common_args,
    close_process_group,
    parse_common,
    run_tool,
)
from densedet.apis.compile import add_compile_arg, compile_model
from densedet.apis.config import enable_exact_resume, load_config, prepare_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', action='store_true', default=False,
                        help='resume from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='mixed precision: fp16 on GPU, bfloat16 autocast on CPU')
    add_compile_arg(parser)
    add_common_args(parser)
    return parse_common(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = prepare_config(load_config(args.config), args.config, work_dir=args.work_dir,
                         cfg_options=args.cfg_options, launcher=args.launcher, resume=args.resume)
    enable_exact_resume(cfg)
    if args.amp:
        from densedet.apis.config import enable_amp
        enable_amp(cfg)
        print_log(f'mixed precision: {cfg.optim_wrapper.type}', logger='current', level=logging.INFO)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if args.compile:
        parts = compile_model(runner.model, backend=args.compile)
        print_log(f'compiled ({args.compile}): {", ".join(parts)}', logger='current', level=logging.INFO)
    runner.train()
    close_process_group()


if __name__ == '__main__':
    run_tool(main)
