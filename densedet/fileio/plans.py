"""The plans and cross-validation splits of a volume task (``plans.json``, ``splits.json``, written
by ``tools/data/plan_volumes.py``; format in :mod:`densedet.preparation.planning`), read with one
clear error each when missing or malformed. Reads are cached per file and modification time: the
transforms read them once per sample."""
import json
import os.path as osp
from functools import lru_cache
from typing import List

from densedet.errors import BadConfigError, BadDataError, DataKeyError, DataNotFoundError


@lru_cache(maxsize=16)
def _load_json(path: str, mtime: float) -> dict:
    with open(path) as f:
        return json.load(f)


def load_plans(path: str) -> dict:
    """A plans file, with one clear error when it is missing or not plans."""
    if not osp.isfile(path):
        raise DataNotFoundError(f'plans file {path} does not exist: run tools/data/plan_volumes.py CONFIG first')
    try:
        plans = _load_json(osp.abspath(path), osp.getmtime(path))
    except json.JSONDecodeError as e:
        raise BadDataError(f'{path} is not valid JSON: {e}') from e
    for key in ('target_spacing', 'normalization'):
        if key not in plans:
            raise DataKeyError(f'{path}: key {key!r} is missing (not a densedet plans file?)')
    return plans


def load_splits(path: str) -> List[dict]:
    """Every fold of a splits file (``[{"train": [...], "val": [...]}, ...]``)."""
    if not osp.isfile(path):
        raise DataNotFoundError(f'splits file {path} does not exist: tools/data/plan_volumes.py writes one')
    try:
        splits = _load_json(osp.abspath(path), osp.getmtime(path))
    except json.JSONDecodeError as e:
        raise BadDataError(f'{path} is not valid JSON: {e}') from e
    if not isinstance(splits, list) or not splits:
        raise BadDataError(f'{path}: expected a non-empty list of folds ({{"train": [...], "val": [...]}})')
    return splits


def load_split(path: str, fold: int, part: str) -> List[str]:
    """The case ids of ``part`` ('train' / 'val') of ``fold`` in a splits file."""
    splits = load_splits(path)
    if not 0 <= fold < len(splits):
        raise BadConfigError(f'{path}: fold {fold} does not exist (folds 0..{len(splits) - 1})')
    if part not in splits[fold]:
        raise DataKeyError(f'{path}: fold {fold} has no {part!r} list')
    return list(splits[fold][part])
