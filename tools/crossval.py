"""Cross-validate a volume config: train every fold of its splits.json, predict each fold's held-out
cases in their original files, and summarise (nnU-Net's 5-fold validation).

    python tools/crossval.py CONFIG [--folds 0 1 2 3 4] [--work-dir DIR] [--save-probabilities] [--tta]
                             [--no-hd95] [--summarize-only] [--cfg-options k=v ...] [--launcher none|pytorch|slurm]

Work dir (default ``work_dirs/<config name>/crossval``): ``fold_K/`` (mmengine's work dir of the fold,
``validation/`` with the held-out predictions: ``CASE.nii.gz``, and with ``--save-probabilities``
``CASE.npz`` for tools/find_best_configuration.py), ``summary.json`` / ``.csv`` / ``.png`` (Dice and
HD95 per case, fold and class; mean ± sd over folds and over cases) and ``crossval.json``.

Resumable: a rerun skips finished folds and resumes an interrupted one from its last checkpoint.
On a cluster, run each fold as its own job (``--folds K``; tools/slurm_crossval.sh) and summarise
once they are all done (``--summarize-only``). The summary is written when every fold of the splits
is finished.
"""
import argparse
import os.path as osp

from mmengine.dist import is_main_process

import densedet  # noqa: F401
from densedet.apis.cli import add_common_args, close_process_group, parse_common, run_tool
from densedet.apis.config import load_config, prepare_config
from densedet.apis.crossval import CrossValidation, fold_count
from densedet.evaluation.crossval import format_table


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Cross-validate a volume config over its splits')
    parser.add_argument('config')
    parser.add_argument('--folds', type=int, nargs='+', help='folds to run (default: all of splits.json)')
    parser.add_argument('--work-dir', help='default: work_dirs/<config name>/crossval')
    parser.add_argument('--save-probabilities', action='store_true',
                        help='also keep each held-out case\'s probabilities (CASE.npz), for ensembling')
    parser.add_argument('--tta', action='store_true', help='predict the held-out cases with mirror TTA')
    parser.add_argument('--no-hd95', action='store_true', help='score Dice only (HD95 is the slow part)')
    parser.add_argument('--summarize-only', action='store_true', help='train nothing: summarise the finished folds')
    add_common_args(parser)
    return parse_common(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', name, 'crossval')
    config = args.config
    if args.summarize_only and osp.isfile(osp.join(work_dir, 'config.py')):
        config = osp.join(work_dir, 'config.py')  # the config as the folds ran it (options applied)
    cfg = load_config(config)
    fold_count(cfg)  # a config without splits fails here, before the data roots are checked
    cfg = prepare_config(cfg, args.config, work_dir=work_dir, cfg_options=args.cfg_options,
                         launcher=args.launcher, check_data=not args.summarize_only)
    cv = CrossValidation(cfg, work_dir, save_probabilities=args.save_probabilities, tta=args.tta,
                         hd95=not args.no_hd95, name=name)
    if not args.summarize_only:
        cv.run(args.folds)
    close_process_group()
    if not is_main_process():
        return None
    finished = cv.finished_folds()
    if len(finished) < cv.num_folds and not args.summarize_only:
        left = [k for k in range(cv.num_folds) if k not in finished]
        print(f'folds {sorted(finished)} of {cv.num_folds} finished; run --folds {" ".join(map(str, left))}, '
              'then the summary is written')
        return None
    summary = cv.summarize()
    print(format_table({name: summary}))
    print(f'wrote {osp.join(work_dir, "summary.json")} (+ .csv, .png) and {osp.join(work_dir, "crossval.json")}')
    return summary


if __name__ == '__main__':
    run_tool(main)
