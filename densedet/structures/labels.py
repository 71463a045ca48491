"""Class-index labels and nnU-Net v2's regions, and the way back from probabilities to labels.

A task either has exclusive classes (softmax over ``K`` outputs, argmax) or overlapping
**regions** (nnU-Net v2's region-based training, e.g. BraTS whole tumour / tumour core /
enhancing tumour): one sigmoid output per region, each region a set of class indices; a label
map is rebuilt by painting the thresholded regions in ``regions_class_order`` (later ones over
earlier ones, as nnU-Net does). ``regions`` here: a list of
``dict(name=..., labels=[class indices], order=class index painted)``.
"""
from typing import List, Optional, Sequence

import torch

from .volume_data_sample import IGNORE_INDEX


def region_masks(label: torch.Tensor, regions: Sequence[dict]) -> torch.Tensor:
    """Class indices ``(N, *spatial)`` -> region targets ``(N, R, *spatial)`` (uint8: 1 inside the
    region, 0 outside, ``IGNORE_INDEX`` where the label is ignored)."""
    ignored = label == IGNORE_INDEX
    masks = []
    for region in regions:
        inside = torch.isin(label, torch.as_tensor(list(region['labels']), device=label.device))
        masks.append(inside.to(torch.uint8).masked_fill(ignored, IGNORE_INDEX))
    return torch.stack(masks, dim=1)


def probabilities(logits: torch.Tensor, regions: Optional[Sequence[dict]] = None) -> torch.Tensor:
    """Softmax over the class dimension (dim 0 or 1 for a batch), or one sigmoid per region."""
    dim = 1 if logits.ndim == 5 else 0
    return logits.float().sigmoid() if regions else logits.float().softmax(dim=dim)


def labels_from_probabilities(probs: torch.Tensor, regions: Optional[Sequence[dict]] = None) -> torch.Tensor:
    """``(K, *spatial)`` probabilities -> class indices ``(*spatial)``: argmax, or for regions each
    region above 0.5 painted with its ``order`` index, in the order given."""
    if not regions:
        return probs.argmax(0)
    out = torch.zeros(probs.shape[1:], dtype=torch.long, device=probs.device)
    for k, region in enumerate(regions):
        out[probs[k] > 0.5] = int(region['order'])
    return out


def evaluation_targets(classes: Sequence[str], regions: Optional[Sequence[dict]] = None,
                       selected: Optional[Sequence[int]] = None) -> List[tuple]:
    """What a metric scores: ``[(name, [class indices]), ...]``: each foreground class (or the
    ``selected`` ones), or each region."""
    if regions:
        return [(r['name'], [int(c) for c in r['labels']]) for r in regions]
    indices = list(selected) if selected is not None else list(range(1, len(classes)))
    return [(classes[c] if c < len(classes) else str(c), [c]) for c in indices]
