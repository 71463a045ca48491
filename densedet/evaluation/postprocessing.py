"""nnU-Net's optional post-processing: keep only the largest connected component of a class, where
that improves the validation Dice (decided once on validation predictions, applied at test).

    python tools/analysis/decide_postprocessing.py CONFIG PRED_DIR     # -> PRED_DIR/postprocessing.json
    python tools/test.py CONFIG CKPT --cfg-options model.test_cfg.largest_component=PRED_DIR/postprocessing.json

Components use full connectivity (26 neighbours in 3D), labelled by ``scipy.ndimage.label``
(MONAI's helper for it needs scikit-image, which densedet does not install).
"""
import json
import os.path as osp
from typing import Dict, List, Sequence, Union

import numpy as np
import torch

from densedet.errors import DataNotFoundError


def keep_largest_component(label: Union[np.ndarray, torch.Tensor], classes: Sequence[int]):
    """``label`` (class indices) with every class in ``classes`` reduced to its largest connected
    component; the removed voxels become background (0)."""
    from scipy import ndimage
    array = label.cpu().numpy() if isinstance(label, torch.Tensor) else label
    out = array.copy()
    full = ndimage.generate_binary_structure(array.ndim, array.ndim)
    for c in classes:
        components, count = ndimage.label(array == c, structure=full)
        if count > 1:
            largest = np.argmax(np.bincount(components.ravel())[1:]) + 1
            out[(components > 0) & (components != largest)] = 0
    return torch.from_numpy(out).to(label.device) if isinstance(label, torch.Tensor) else out


def largest_component_classes(setting: Union[None, str, Sequence[int]]) -> List[int]:
    """The classes of a ``test_cfg.largest_component`` setting: a list, or the JSON that
    :func:`decide_largest_component` wrote."""
    if setting is None:
        return []
    if isinstance(setting, str):
        if not osp.isfile(setting):
            raise DataNotFoundError(f'test_cfg.largest_component: {setting} does not exist '
                                    '(tools/analysis/decide_postprocessing.py writes it)')
        with open(setting) as f:
            return [int(c) for c in json.load(f)['largest_component']]
    return [int(c) for c in setting]


def _dice(pred: np.ndarray, gt: np.ndarray) -> float:
    denominator = pred.sum() + gt.sum()
    return 1.0 if denominator == 0 else 2.0 * np.logical_and(pred, gt).sum() / denominator


def decide_largest_component(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], num_classes: int) -> Dict:
    """For each foreground class: mean Dice over the cases with and without keeping its largest
    component; the class is kept in ``largest_component`` when that mean strictly improves."""
    decision = dict(largest_component=[], dice={})
    for c in range(1, num_classes):
        before = [_dice(p == c, g == c) for p, g in zip(preds, gts)]
        after = [_dice(keep_largest_component(p, [c]) == c, g == c) for p, g in zip(preds, gts)]
        decision['dice'][str(c)] = dict(without=float(np.mean(before)), largest_component=float(np.mean(after)))
        if np.mean(after) > np.mean(before):
            decision['largest_component'].append(c)
    return decision
