"""Preparing a volume task once, nnU-Net's way: fingerprint and plan (spacing, normalisation,
patch size, folds: :mod:`.planning`), then run every labelled case through the deterministic
transforms and store it for memory-mapped training (:mod:`.preprocessing`), in worker processes or
shards (:mod:`.jobs`). Sits above datasets and transforms, which it runs; nothing below imports it.

    python tools/data/plan_volumes.py CONFIG          # fingerprint -> plans.json + splits.json
    python tools/data/preprocess_volumes.py CONFIG    # every labelled case -> out_dir/cases/
"""
from .jobs import parse_shard, raw_cases, run_cases
from .planning import (
    activation_bytes_per_voxel,
    fingerprint_case,
    fit_patch_size,
    make_plans,
    make_splits,
    plan_from_config,
    target_spacing,
)
from .preprocessing import preprocess_case, preprocess_dataset

__all__ = ['activation_bytes_per_voxel', 'fingerprint_case', 'fit_patch_size', 'make_plans', 'make_splits',
           'parse_shard', 'plan_from_config', 'preprocess_case', 'preprocess_dataset', 'raw_cases', 'run_cases',
           'target_spacing']
