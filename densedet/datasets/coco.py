"""mmdet's ``CocoDataset`` with the annotation file checked at load time.

mmdet 3.x skips bad annotations silently and finds a missing image only when a worker
tries to read it, mid-epoch. :class:`CheckedCocoDataset` parses exactly as mmdet does and
adds, for each problem, either one error naming the file and the annotation / image id,
or one warning (counting the cases and naming the first ids) where mmdet's convention is
to filter:

==========================================  ===============================================
annotation file problem                     behaviour
==========================================  ===============================================
image file missing on disk                  ``FileNotFoundError`` naming the json, the image
                                            id and path (``check_files=True``, the default)
``category_id`` not among ``categories``    ``ValueError`` naming the json and annotation id
box with zero width, height or area         skipped (as mmdet) with a warning
box / polygon partly outside the image      clipped to the image with a warning
box / polygon entirely outside the image    skipped (as mmdet) with a warning
polygon with fewer than 3 points            that polygon dropped with a warning
image without annotations (training)        filtered by ``filter_cfg.filter_empty_gt`` (as
                                            mmdet) with a warning giving the count
==========================================  ===============================================
"""
import os.path as osp
import warnings
from typing import Dict, List, Union

import numpy as np
from mmdet.datasets import CocoDataset

from densedet.errors import BadDataError, DataNotFoundError
from densedet.registry import MMDET_DATASETS as DATASETS


def _first(ids: List, n: int = 5) -> str:
    shown = ', '.join(str(i) for i in ids[:n])
    return shown + (f', ... ({len(ids)} in all)' if len(ids) > n else '')


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """``CocoDataset`` that checks its annotation file (see the module docstring).

    Args:
        check_files: check that every image file exists when the dataset is built
            (one ``stat`` per image; switch off for remote storage backends).
        **kwargs: as mmdet's ``CocoDataset``.
    """

    def __init__(self, *args, check_files: bool = True, **kwargs):
        self.check_files = check_files
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        self._problems: Dict[str, List] = dict(missing=[], degenerate=[], outside=[], clipped=[], short_polygon=[])
        data_list = super().load_data_list()
        p = self._problems
        if p['missing']:
            img_id, path = p['missing'][0]
            raise DataNotFoundError(f'{self.ann_file}: {len(p["missing"])} image file(s) listed in the annotation file '
                                    f'do not exist, first: image id {img_id} -> {path}')
        messages = {
            'degenerate': 'annotations with a zero-width, zero-height or zero-area box skipped',
            'outside': 'annotations entirely outside their image skipped',
            'clipped': 'annotations partly outside their image clipped to it',
            'short_polygon': 'polygons with fewer than 3 points dropped',
        }
        for key, what in messages.items():
            if p[key]:
                warnings.warn(f'{self.ann_file}: {len(p[key])} {what} (annotation ids {_first(p[key])})')
        del self._problems
        # The COCO category id of each class, in the metainfo the runner saves with each checkpoint:
        # tools/infer.py writes them into results.json.
        self._metainfo['cat_ids'] = [int(i) for i in self.cat_ids]
        return data_list

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        img_info = raw_data_info['raw_img_info']
        width, height = img_info['width'], img_info['height']
        if self.check_files:
            path = osp.join(self.data_prefix['img'], img_info['file_name'])
            if not osp.isfile(path):
                self._problems['missing'].append((img_info['img_id'], path))
        anns = []
        for ann in raw_data_info['raw_ann_info']:
            if ann['category_id'] not in self.coco.cats:
                raise BadDataError(f'{self.ann_file}: annotation id {ann["id"]} (image id {ann["image_id"]}) has '
                                   f'category_id {ann["category_id"]}, which is not in the file\'s categories '
                                   f'{sorted(self.coco.cats)}')
            ann = self._check_geometry(dict(ann), width, height)
            if ann is not None:
                anns.append(ann)
        return super().parse_data_info(dict(raw_data_info, raw_ann_info=anns))

    def _check_geometry(self, ann: dict, width: int, height: int):
        """The annotation clipped to the image, or None (recorded) when mmdet would skip it."""
        x, y, w, h = ann['bbox']
        if w < 1 or h < 1 or ann.get('area', 1) <= 0:
            self._problems['degenerate'].append(ann['id'])
            return None
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            self._problems['outside'].append(ann['id'])
            return None
        clipped = (x0, y0, x1, y1) != (x, y, x + w, y + h)
        ann['bbox'] = [x0, y0, x1 - x0, y1 - y0]
        seg = ann.get('segmentation')
        if isinstance(seg, list):  # polygons; RLE masks are rasterised at the image size already
            polygons = []
            for poly in seg:
                pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
                if len(pts) < 3:
                    self._problems['short_polygon'].append(ann['id'])
                    continue
                inside = np.clip(pts, 0, [width, height])
                clipped |= bool((inside != pts).any())
                polygons.append(inside.ravel().tolist())
            if not polygons:
                self._problems['degenerate'].append(ann['id'])
                return None
            ann['segmentation'] = polygons
        if clipped:
            self._problems['clipped'].append(ann['id'])
        return ann

    def filter_data(self) -> List[dict]:
        kept = super().filter_data()
        if len(kept) < len(self.data_list) and not self.test_mode:
            dropped = sorted({d['img_id'] for d in self.data_list} - {d['img_id'] for d in kept})
            warnings.warn(f'{self.ann_file}: {len(dropped)} images without usable annotations (or below '
                          f'filter_cfg.min_size) are not used for training (image ids {_first(dropped)})')
        return kept
