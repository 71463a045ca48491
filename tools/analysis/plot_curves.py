"""Plots the training loss and validation mIoU of a work dir (mmengine's scalars.json).

    python tools/analysis/plot_curves.py WORK_DIR [--out WORK_DIR/curves.png]
"""
import argparse
import glob
import json
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


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


def plot(work_dir: str, out: str, metric: str = 'mIoU') -> str:
    train, val = read_scalars(work_dir)
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot([r['step'] for r in train], [r['loss'] for r in train])
    ax[0].set(title='training loss', xlabel='iteration', ylabel='loss')
    points = [(r['step'], r[metric]) for r in val if metric in r]
    if points:
        ax[1].plot(*zip(*points), marker='o')
    ax[1].set(title=f'validation {metric}', xlabel='iteration', ylabel=metric)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dir')
    parser.add_argument('--out')
    parser.add_argument('--metric', default='mIoU')
    args = parser.parse_args()
    print(f'curves written to {plot(args.work_dir, args.out or osp.join(args.work_dir, "curves.png"), args.metric)}')


if __name__ == '__main__':
    main()
