"""Packing a volume sample for the model (mmseg's ``PackSegInputs`` for volumes)."""
from typing import Dict, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from densedet.registry import TRANSFORMS
from densedet.structures import VolumeDataSample


@TRANSFORMS.register_module()
class PackVolumeInputs(BaseTransform):
    """``inputs`` (float tensor ``(C, D, H, W)``) + a :class:`VolumeDataSample` with ``gt_seg``
    (long tensor) and the meta keys the model and the metrics use."""

    DEFAULT_META_KEYS = ('case_id', 'img_paths', 'seg_path', 'classes', 'label_values', 'ori_shape', 'ori_spacing',
                         'ori_affine', 'affine', 'header', 'spacing', 'img_shape', 'pad_shape', 'crop_bbox',
                         'flip_axes', 'regions', 'ignore_value')

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS):
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> Dict:
        sample = VolumeDataSample()
        if 'gt_seg' in results:
            sample.gt_seg = torch.from_numpy(np.ascontiguousarray(results['gt_seg'])).long()
        meta = {k: results[k] for k in self.meta_keys if k in results}
        meta.setdefault('pad_shape', tuple(results['img'].shape[1:]))
        sample.set_metainfo(meta)
        return dict(inputs=torch.from_numpy(np.ascontiguousarray(results['img'], dtype=np.float32)),
                    data_samples=sample)
