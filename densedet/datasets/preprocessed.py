"""Volumes preprocessed once (``densedet.preparation``, tools/data/preprocess_volumes.py), listed
as a dataset: the stored layout (:func:`case_paths`), the raw files' fingerprints that tell a
changed case (:func:`source_stat`) and :class:`PreprocessedVolumeDataset`.

``LoadPreprocessedPatch`` reads a patch of a stored case through ``np.load(mmap_mode='r')``.
Validation and test keep the raw dataset and the config's test pipeline, so metrics and written
predictions stay on the original files.
"""
import glob
import json
import os
import os.path as osp
from typing import List, Sequence

import numpy as np

from densedet.errors import BadConfigError, BadDataError, DataNotFoundError
from densedet.registry import DATASETS

from .volume import VolumeDataset


def source_stat(paths: Sequence[str]) -> List[list]:
    """``[path, size, mtime_ns]`` of each raw file (what tells a changed case)."""
    stats = [(p, os.stat(p)) for p in paths]
    return [[osp.abspath(p), s.st_size, s.st_mtime_ns] for p, s in stats]


def case_sources(item: dict) -> List[str]:
    return list(item['img_paths']) + ([item['seg_path']] if item.get('seg_path') else [])


def case_paths(out_dir: str, case_id: str) -> dict:
    base = osp.join(out_dir, 'cases', case_id)
    return dict(img=base + '_img.npy', seg=base + '_seg.npy', locations=base + '_fg.npz', properties=base + '.json')


@DATASETS.register_module()
class PreprocessedVolumeDataset(VolumeDataset):
    """The cases tools/data/preprocess_volumes.py stored under ``data_root`` (its ``out_dir``).

    Items carry the stored files (``img_paths`` = the image ``.npy``, ``seg_path``,
    ``locations_path``) and the geometry :class:`~densedet.transforms.LoadPreprocessedPatch` adds
    to the results. ``cases`` / ``splits_file`` + ``fold`` select cases as for the raw datasets.
    With ``check_sources`` (default) a case whose raw files still exist but changed since
    preprocessing is an error naming it.
    """

    default_ann_file = 'dataset.json'

    def __init__(self, data_root: str, check_sources: bool = True, **kwargs):
        self.check_sources = check_sources
        super().__init__(data_root=data_root, **kwargs)

    def _describe(self) -> dict:
        if not osp.isfile(self.ann_file):
            raise DataNotFoundError(f'{self.ann_file} does not exist: run tools/data/preprocess_volumes.py CONFIG')
        with open(self.ann_file) as f:
            desc = json.load(f)
        return dict(classes=tuple(desc['classes']), label_values=desc['label_values'],
                    modalities=tuple(desc['modalities']), ignore_value=desc.get('ignore_value'),
                    regions=desc.get('regions'), regions_class_order=desc.get('regions_class_order'))

    def _list_cases(self) -> List[dict]:
        if self.split != 'train':
            raise BadConfigError('PreprocessedVolumeDataset holds labelled (training) cases only; '
                                 'test on the raw dataset')
        items = []
        for path in sorted(glob.glob(osp.join(self.data_root, 'cases', '*.json'))):
            with open(path) as f:
                props = json.load(f)
            case = props['case_id']
            if self.check_sources:
                for old in props['sources']:
                    if osp.isfile(old[0]) and source_stat([old[0]])[0] != old:
                        raise BadDataError(f'case {case!r}: {old[0]} changed after it was preprocessed into '
                                           f'{self.data_root}; run tools/data/preprocess_volumes.py again')
            paths = case_paths(self.data_root, case)
            items.append(dict(case_id=case, img_paths=[paths['img']], seg_path=paths['seg'],
                              locations_path=paths['locations'], source=path, spacing=tuple(props['spacing']),
                              affine=np.asarray(props['affine']), ori_shape=tuple(props['ori_shape']),
                              ori_spacing=tuple(props['ori_spacing']), ori_affine=np.asarray(props['ori_affine'])))
        return items
