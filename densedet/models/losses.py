"""Losses for N-d logits with an ignore label (volumes).

- ``SoftDiceLoss``: mmseg 1.2's ``DiceLoss`` one-hot-encodes 2D labels only and MONAI's
  ``DiceLoss`` has no ignore index (padding and crop borders are labelled 255 here).
- ``VoxelWeightedCrossEntropyLoss``: mmseg 1.2's ``CrossEntropyLoss`` with ``class_weight``
  indexes the weights with every label, ignored ones included, and fails on 255; and it
  normalises by the sum of the weights, where H-DenseUNet's loss is the mean over voxels.
"""
from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from densedet.errors import BadConfigError
from densedet.registry import MODELS
from densedet.structures import IGNORE_INDEX


def deep_supervision_losses(outputs: Sequence[torch.Tensor], weights: Sequence[float],
                            loss_fn: Callable[[torch.Tensor], Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """The losses of every deep-supervision output (UNet++'s X(0,1)..X(0,L)): ``loss_fn``'s
    entries under ``head{j}.``, the ``loss*`` ones scaled by output ``j``'s weight (accuracies
    are logged as they are)."""
    if len(outputs) != len(weights):
        raise BadConfigError(f'deep supervision: {len(outputs)} outputs but {len(weights)} loss weights')
    losses = {}
    for j, (logits, weight) in enumerate(zip(outputs, weights), start=1):
        for key, value in loss_fn(logits).items():
            losses[f'head{j}.{key}'] = value * weight if key.startswith('loss') else value
    return losses


class _VolumeLoss(nn.Module):
    """``loss_weight`` and the ``loss_name`` mmseg's losses expose (the key in the log)."""

    def __init__(self, loss_weight: float, loss_name: str):
        super().__init__()
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name


@MODELS.register_module()
class SoftDiceLoss(_VolumeLoss):
    """``1 - mean_c Dice_c`` of the softmax probabilities, voxels labelled ``ignore_index``
    excluded. ``batch_dice`` pools the batch before the ratio (nnU-Net's default for 3D
    patches); the background class is left out unless ``include_background``.

    Works for (N, K, *spatial) logits of any dimensionality; ``loss_name`` is ``'loss_dice'``.
    Given region targets (``(N, R, *spatial)``, 0 / 1 / ``ignore_index``: region-based training)
    it is the sigmoid Dice of every region (nnU-Net's region loss; no background to leave out).
    """

    def __init__(self, include_background: bool = False, batch_dice: bool = True, smooth: float = 1e-5,
                 loss_weight: float = 1.0, loss_name: str = 'loss_dice'):
        super().__init__(loss_weight, loss_name)
        self.include_background = include_background
        self.batch_dice = batch_dice
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX,
                weight: Optional[torch.Tensor] = None, **kwargs) -> torch.Tensor:
        regions = target.ndim == logits.ndim
        if regions:
            probs = logits.float().sigmoid()
            valid = target != ignore_index
            onehot = (target == 1).to(probs.dtype) * valid
        else:
            probs = logits.float().softmax(dim=1)
            valid = (target != ignore_index).unsqueeze(1)
            onehot = F.one_hot(target.masked_fill(~valid[:, 0], 0).long(), logits.shape[1])
            onehot = onehot.movedim(-1, 1).to(probs.dtype) * valid
        probs = probs * valid
        dims = [0] + list(range(2, logits.ndim)) if self.batch_dice else list(range(2, logits.ndim))
        intersection = (probs * onehot).sum(dims)
        denominator = probs.sum(dims) + onehot.sum(dims)
        dice = (2 * intersection + self.smooth) / (denominator + self.smooth)
        if not self.include_background and not regions:
            dice = dice[..., 1:]
        return self.loss_weight * (1 - dice.mean())


@MODELS.register_module()
class VoxelWeightedCrossEntropyLoss(_VolumeLoss):
    """``mean over non-ignored voxels of class_weight[y] * -log p_y`` (the official
    H-DenseUNet weighted cross-entropy); ``loss_name`` is ``'loss_ce'``."""

    def __init__(self, class_weight: Optional[Sequence[float]] = None, loss_weight: float = 1.0,
                 loss_name: str = 'loss_ce'):
        super().__init__(loss_weight, loss_name)
        self.class_weight = list(class_weight) if class_weight is not None else None

    def forward(self, logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX,
                **kwargs) -> torch.Tensor:
        weight = logits.new_tensor(self.class_weight) if self.class_weight is not None else None
        loss = F.cross_entropy(logits.float(), target.long(), weight=weight, ignore_index=ignore_index,
                               reduction='none')
        valid = (target != ignore_index).sum().clamp(min=1)
        return self.loss_weight * loss.sum() / valid
