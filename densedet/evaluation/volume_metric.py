"""Volume segmentation metrics (Dice per case and pooled, HD95 in mm) and the NIfTI writer.

Surface distances come from MONAI (``compute_hausdorff_distance``: edges by erosion, Euclidean
distance transform with the voxel spacing), the better-kept implementation of that piece;
the Dice bookkeeping and the empty-mask rules are here.

Rules for a class absent from a case (nnU-Net's for Dice):
- Dice: NaN when prediction and label are both empty (excluded from the means); 0 when only
  one is empty.
- HD95: NaN when both are empty; when only one is empty, the case's worst possible distance,
  the diagonal of the volume in mm (a finite penalty: an infinity would make every mean
  infinite).
- Global Dice pools TP / FP / FN over all cases before the ratio (robust to small structures
  absent from some cases, as the LiTS "Dice global").
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from densedet.errors import BadDataError, DataKeyError
from densedet.fileio import read_nifti, write_nifti
from densedet.registry import METRICS
from densedet.structures import IGNORE_INDEX, evaluation_targets
from densedet.transforms import map_labels


def dice_counts(pred: np.ndarray, label: np.ndarray, cls: Union[int, Sequence[int]]):
    """``(tp, fp, fn)`` voxel counts of one class, or of a region (a set of classes)."""
    p, g = _mask(pred, cls), _mask(label, cls)
    tp = int(np.count_nonzero(p & g))
    return tp, int(np.count_nonzero(p)) - tp, int(np.count_nonzero(g)) - tp


def _mask(label: np.ndarray, cls: Union[int, Sequence[int]]) -> np.ndarray:
    return label == cls if isinstance(cls, (int, np.integer)) else np.isin(label, list(cls))


def dice_from_counts(tp: int, fp: int, fn: int) -> float:
    denominator = 2 * tp + fp + fn
    return float('nan') if denominator == 0 else 2 * tp / denominator


def hd95(pred_mask: np.ndarray, label_mask: np.ndarray, spacing: Sequence[float]) -> float:
    """95th-percentile symmetric Hausdorff distance in mm between two boolean masks."""
    has_pred, has_label = bool(pred_mask.any()), bool(label_mask.any())
    if not has_pred and not has_label:
        return float('nan')
    if has_pred != has_label:
        return float(np.linalg.norm(np.asarray(pred_mask.shape) * np.asarray(spacing)))
    from monai.metrics import compute_hausdorff_distance
    to_tensor = lambda m: torch.from_numpy(np.ascontiguousarray(m))[None, None].float()  # noqa: E731
    value = compute_hausdorff_distance(to_tensor(pred_mask), to_tensor(label_mask), include_background=True,
                                       percentile=95, spacing=[list(map(float, spacing))])
    return float(value.item())


def score_case(pred: np.ndarray, label: np.ndarray, targets: Sequence[tuple], spacing: Sequence[float],
               with_hd95: bool = True) -> dict:
    """Dice counts and HD95 of each ``(name, class indices)`` target on one case (voxels labelled
    ``IGNORE_INDEX`` count as neither foreground nor background)."""
    valid = label != IGNORE_INDEX
    if not valid.all():
        pred, label = np.where(valid, pred, 0), np.where(valid, label, 0)
    case = dict(names=[name for name, _ in targets], counts=[], hd95=[])
    for _, members in targets:
        case['counts'].append(dice_counts(pred, label, members))
        case['hd95'].append(hd95(_mask(pred, members), _mask(label, members), spacing) if with_hd95 else float('nan'))
    return case


def original_label(sample: dict) -> Optional[np.ndarray]:
    """The case's label on its original grid: the packed ``gt_seg`` when the pipeline did not
    resample (padding cropped off), else the label file read again."""
    ori_shape = tuple(sample.get('ori_shape', ()))
    gt = sample.get('gt_seg')
    if gt is not None and tuple(sample.get('img_shape', ())) == ori_shape:
        return gt[tuple(slice(0, s) for s in ori_shape)].cpu().numpy()
    if sample.get('seg_path'):
        seg = read_nifti(sample['seg_path'], dtype=None, what=f'case {sample.get("case_id")!r} label')
        return map_labels(sample.get('case_id'), seg, sample.get('label_values'), sample.get('ignore_value'))
    return None


@METRICS.register_module()
class VolumeMetric(BaseMetric):
    """Per-class Dice (mean over cases), global Dice and HD95 (mm) on the original voxel grid.

    Keys: ``Dice.<class>``, ``GlobalDice.<class>``, ``HD95.<class>`` for each foreground class
    (or ``classes``; or each region when the samples carry the dataset's ``regions``: a region is
    scored on the label maps as the union of its classes, as nnU-Net scores regions), and their
    means ``mDice``, ``mGlobalDice``, ``mHD95`` (NaN entries excluded). ``per_case`` also logs one line per case.

    Args:
        classes: class indices to evaluate (default 1..K-1).
        hd95: compute HD95 (the slow part on large volumes).
    """

    default_prefix = ''

    def __init__(self, classes: Optional[Sequence[int]] = None, hd95: bool = True, per_case: bool = False,
                 collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.classes = list(classes) if classes is not None else None
        self.with_hd95 = hd95
        self.per_case = per_case

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            label = original_label(sample)
            if label is None:
                raise DataKeyError(f'VolumeMetric: case {sample.get("case_id")!r} has no label (gt_seg / seg_path); '
                                   'evaluate on labelled cases or drop the metric')
            pred = sample['pred_seg'].cpu().numpy()
            if pred.shape != label.shape:
                raise BadDataError(f'VolumeMetric: case {sample.get("case_id")!r}: prediction {pred.shape} and label '
                                   f'{label.shape} differ in shape')
            names = sample.get('classes') or [str(c) for c in range(int(max(pred.max(), label.max())) + 1)]
            targets = evaluation_targets(names, sample.get('regions'), self.classes)
            spacing = sample.get('ori_spacing') or (1.0, 1.0, 1.0)
            case = score_case(pred, label, targets, spacing, self.with_hd95)
            case['case_id'] = sample.get('case_id')
            self.results.append(case)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        names = results[0]['names']
        counts = np.array([r['counts'] for r in results], dtype=np.float64)  # cases x classes x (tp, fp, fn)
        dice = np.array([[dice_from_counts(*c) for c in r['counts']] for r in results])
        hd = np.array([r['hd95'] for r in results], dtype=np.float64)
        pooled = counts.sum(0)
        metrics = {}
        with np.errstate(invalid='ignore'):
            for k, name in enumerate(names):
                metrics[f'Dice.{name}'] = _nanmean(dice[:, k])
                metrics[f'GlobalDice.{name}'] = dice_from_counts(*pooled[k])
                if self.with_hd95:
                    metrics[f'HD95.{name}'] = _nanmean(hd[:, k])
        metrics['mDice'] = _nanmean([metrics[f'Dice.{n}'] for n in names])
        metrics['mGlobalDice'] = _nanmean([metrics[f'GlobalDice.{n}'] for n in names])
        if self.with_hd95:
            metrics['mHD95'] = _nanmean([metrics[f'HD95.{n}'] for n in names])
        if self.per_case:
            for r, d, h in zip(results, dice, hd):
                print_log(f'{r["case_id"]}: ' + ', '.join(f'{n} Dice {x:.4f} HD95 {y:.2f}'
                                                         for n, x, y in zip(names, d, h)), logger='current')
        return {k: round(float(v), 4) if np.isfinite(v) else float(v) for k, v in metrics.items()}


def _nanmean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float('nan') if np.all(np.isnan(values)) else float(np.nanmean(values))


def write_prediction(pred_seg: torch.Tensor, path: str, sample: dict, label_values=None) -> str:
    """Writes class indices ``(D, H, W)`` as NIfTI with the case's original affine and header,
    mapped back to the dataset's label values when known."""
    pred = pred_seg.cpu().numpy()
    if label_values is not None:
        pred = np.asarray(label_values)[pred]
    dtype = np.uint8 if pred.min(initial=0) >= 0 and pred.max(initial=0) < 256 else np.int16
    return write_nifti(pred, path, sample['ori_affine'], sample.get('header'), dtype=dtype)


@METRICS.register_module()
class NiftiPredictionWriter(BaseMetric):
    """Writes each case's ``pred_seg`` to ``output_dir/<case_id>.nii.gz`` with the input's
    affine and header (label values mapped back to the dataset's own), atomically.
    ``tools/test.py --out DIR`` adds it to a volume config's evaluators. Returns no metrics."""

    def __init__(self, output_dir: str, collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.output_dir = output_dir

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            case = sample.get('case_id') or osp.basename(sample['img_paths'][0]).split('.')[0]
            path = osp.join(self.output_dir, f'{case}.nii.gz')
            self.results.append(write_prediction(sample['pred_seg'], path, sample, sample.get('label_values')))

    def compute_metrics(self, results: list) -> dict:
        print_log(f'wrote {len(results)} NIfTI predictions to {self.output_dir}', logger='current')
        return {}
