"""Preprocess every labelled case of a volume task once into memory-mappable arrays.

    python tools/data/preprocess_volumes.py CONFIG [--workers N] [--shard I/N]

Runs the config's ``preprocess.pipeline`` (e.g. load, crop to the non-zero box, normalise and
resample as the plans say) on each case of ``preprocess.dataset`` and stores it under
``preprocess.out_dir`` (layout: densedet/preparation/preprocessing.py). Resumable and crash-safe: files
are written atomically, finished cases are skipped, cases whose raw files, pipeline or plans changed
are redone with a message, cases a killed run left half-written are finished. ``--shard I/N``
takes every N-th case from the I-th (e.g. a slurm array: ``--shard $SLURM_ARRAY_TASK_ID/N``).
"""
import argparse

import densedet  # noqa: F401
from densedet.apis.cli import run_tool
from densedet.apis.config import load_config
from densedet.errors import ConfigKeyError
from densedet.preparation import preprocess_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--workers', type=int, default=1, help='processes (each single-threaded)')
    parser.add_argument('--shard', help='I/N: this process takes cases I, I+N, I+2N, ...')
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    if 'preprocess' not in cfg:
        raise ConfigKeyError(f'{args.config} has no preprocess block (see densedet/preparation/preprocessing.py)')
    stats = preprocess_dataset(cfg.preprocess.to_dict(), workers=args.workers, shard=args.shard)
    if stats['seconds']:
        s = sorted(stats['seconds'])
        print(f"preprocessed {stats['done']} case(s), skipped {stats['skipped']} already done; per case "
              f"median {s[len(s) // 2]:.2f} s, max {s[-1]:.2f} s")
    else:
        print(f"nothing to do: {stats['skipped']} case(s) already preprocessed")
    return stats


if __name__ == '__main__':
    run_tool(main)
