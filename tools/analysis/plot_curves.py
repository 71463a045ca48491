"""Plots the training loss and the validation metric of a work dir (mmengine's scalars.json).

    python tools/analysis/plot_curves.py WORK_DIR [--out WORK_DIR/curves.png] [--metric NAME]

The metric is the first of mIoU (mmseg), mDice (volumes), coco/segm_mAP, coco/bbox_mAP (mmdet)
the log has, unless ``--metric`` names one. Validation points are placed by what the log counts:
epochs for epoch-based runs (mmdet's schedules), iterations otherwise.
"""
import argparse
import glob
import json
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt


def read_scalars(work_dir: str):
    """Returns (train records, val records) of the newest run in ``work_dir``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {work_dir}: was it trained with LocalVisBackend?')
    train, val = [], []
    for path in files:  # a resumed run continues in a new timestamped folder
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                (train if 'loss' in rec else val).append(rec)
    return train, val


METRICS = ('mIoU', 'mDice', 'coco/segm_mAP', 'coco/bbox_mAP')


def pick_metric(val, metric=None) -> str:
    """``metric`` if the log has it, else the first of :data:`METRICS` it has."""
    present = {k for r in val for k in r}
    if metric is not None:
        if metric not in present:
            raise KeyError(f'metric {metric!r} is not in the validation log (it has: {sorted(present - {"step"})})')
        return metric
    found = [m for m in METRICS if m in present]
    if not found:
        raise KeyError(f'none of {METRICS} in the validation log (it has: {sorted(present - {"step"})}); '
                       'pass --metric')
    return found[0]


def plot(work_dir: str, out: str, metric: str = None) -> str:
    train, val = read_scalars(work_dir)
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot([r['step'] for r in train], [r['loss'] for r in train])
    ax[0].set(title='training loss', xlabel='iteration', ylabel='loss')
    if val:
        metric = pick_metric(val, metric)
        # epoch-based loops log validation with step = epoch (their training records carry 'epoch')
        by_epoch = any('epoch' in r for r in train)
        ax[1].plot([r['step'] for r in val if metric in r], [r[metric] for r in val if metric in r], marker='o')
        ax[1].set(title=f'validation {metric}', xlabel='epoch' if by_epoch else 'iteration', ylabel=metric)
    else:
        ax[1].set(title='no validation in the log')
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dir')
    parser.add_argument('--out')
    parser.add_argument('--metric', help='default: the first of ' + ', '.join(METRICS) + ' in the log')
    args = parser.parse_args()
    print(f'curves written to {plot(args.work_dir, args.out or osp.join(args.work_dir, "curves.png"), args.metric)}')


if __name__ == '__main__':
    main()
