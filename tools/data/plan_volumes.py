"""Fingerprint a volume task and write its plans (target spacing, normalisation, patch size) and
5-fold cross-validation splits.

    python tools/data/plan_volumes.py CONFIG [--workers N] [--memory-gb G]
    python tools/data/plan_volumes.py --data-root data/Task03_Liver --dataset-type MSDDataset --out plans.json

Reads the config's ``preprocess`` block (raw ``dataset``, ``plans_file``, network ``divisor``,
``memory_gb``) and ``model``; writes ``plans_file`` and ``splits.json`` beside it. Without a
config (a dataset root and type) there is no network, so the plans have no patch size. Every labelled
case is read and checked (missing files, 4D images, affine mismatches, undeclared labels: one error
naming the case). What the plans hold: densedet/preparation/planning.py.
"""
import argparse
import os.path as osp

from mmengine.config import Config

import densedet  # noqa: F401
from densedet.apis.cli import run_tool
from densedet.apis.config import load_config
from densedet.errors import ConfigKeyError
from densedet.preparation import plan_from_config


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', nargs='?')
    parser.add_argument('--data-root', help='instead of a config: the raw task folder')
    parser.add_argument('--dataset-type', default='MSDDataset', help='MSDDataset, NnUNetDataset or LiTSDataset')
    parser.add_argument('--out', help='plans file when planning a --data-root (default DATA_ROOT/plans.json)')
    parser.add_argument('--workers', type=int, default=1, help='processes reading cases')
    parser.add_argument('--memory-gb', type=float, help="activation budget for the patch size (default: the "
                        "config's preprocess.memory_gb, else 8)")
    args = parser.parse_args(argv)
    if (args.config is None) == (args.data_root is None):
        parser.error('give a CONFIG or --data-root (one of them)')
    if args.config:
        cfg = load_config(args.config)
        if 'preprocess' not in cfg:
            raise ConfigKeyError(f'{args.config} has no preprocess block (see densedet/preparation/preprocessing.py)')
    else:
        cfg = Config(dict(preprocess=dict(dataset=dict(type=args.dataset_type, data_root=args.data_root),
                                          plans_file=args.out or osp.join(args.data_root, 'plans.json'))))
    plans = plan_from_config(cfg, workers=args.workers, memory_gb=args.memory_gb, network=bool(args.config))
    norm = ', '.join(f"{n['modality']} ({n['scheme']})" + (f" clip {n['clip'][0]:.0f}..{n['clip'][1]:.0f}, mean "
                                                         f"{n['mean']:.1f}, std {n['std']:.1f}" if n['scheme'] == 'CT'
                                                         else '') for n in plans['normalization'])
    print(f"{len(plans['cases'])} cases planned -> {cfg.preprocess.plans_file}\n"
          f"  target spacing (D, H, W): {', '.join(f'{s:.3g}' for s in plans['target_spacing'])} mm\n"
          f"  median shape after resampling: {plans['median_shape']}\n"
          f"  normalisation: {norm}")
    if 'patch_size' in plans:
        print(f"  patch size: {plans['patch_size']} (batch {plans['batch_size']}, "
              f"{plans['activation_bytes_per_voxel']:.0f} B/voxel of activations, budget {plans['memory_gb']} GB)")
    return plans


if __name__ == '__main__':
    run_tool(main)
