"""H-DenseUNet (Li et al., "H-DenseUNet: Hybrid Densely Connected UNet for Liver and Tumor
Segmentation from CT Volumes", IEEE TMI 2018, https://arxiv.org/abs/1709.07330).

A 2D DenseUNet reads every slice of a (D, H, W) patch with its two neighbours as three input
channels (edge slices repeated, as the official ``hybridnet.py``); its score maps, stacked
back into a volume and scaled by ``score_scale``, join the image as extra channels of a 3D
DenseUNet (auto-context); the hybrid feature fusion (HFF) layer adds the two 64-channel
full-resolution feature volumes and classifies them (3x3x3 conv - dropout - BN - ReLU -
1x1x1 conv).

Training is staged as in the paper, one config per stage (``stage``):
``'2d'`` trains the 2D DenseUNet alone on the slices of each patch; ``'3d'`` freezes it
(eval mode, no gradients) and trains the 3D DenseUNet and the HFF layer; ``'hybrid'`` trains
everything end to end with ``loss(HFF) + lambda_2d * loss(2D)``. Inference (any stage)
predicts with the part trained so far: the 2D scores for ``'2d'``, the HFF output otherwise.
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer

from densedet.errors import BadConfigError, BadDataError
from densedet.registry import MMSEG_MODELS, MODELS

from ..layers import norm_cfg_for_dims
from ..utils import resize_logits
from .volume_encoder_decoder import DEFAULT_LOSSES, BaseVolumeSegmentor

STAGES = ('2d', '3d', 'hybrid')


def slices_with_neighbours(volume: torch.Tensor, context: int = 1) -> torch.Tensor:
    """(N, 1, D, H, W) -> (N * D, 2 * context + 1, H, W): each slice with its ``context``
    neighbours on either side as channels, the edge slices repeated past the ends."""
    if volume.shape[1] != 1:
        raise BadDataError(f'H-DenseUNet reads single-channel volumes, got {volume.shape[1]} channels')
    n, _, d, h, w = volume.shape
    padded = F.pad(volume, (0, 0, 0, 0, context, context), mode='replicate')[:, 0]
    stacks = torch.stack([padded[:, k:k + d] for k in range(2 * context + 1)], dim=2)  # N, D, 2c+1, H, W
    return stacks.reshape(n * d, 2 * context + 1, h, w)


def slices_to_volume(slices: torch.Tensor, batch: int) -> torch.Tensor:
    """(N * D, C, H, W) -> (N, C, D, H, W)."""
    nd, c, h, w = slices.shape
    return slices.reshape(batch, nd // batch, c, h, w).transpose(1, 2)


class HybridFeatureFusion(nn.Module):
    """HFF: ``(f2d + f3d)`` -> 3x3x3 conv - dropout - BN - ReLU -> 1x1x1 classifier."""

    def __init__(self, channels: int, num_classes: int, dropout: float = 0.3, norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None):
        super().__init__()
        self.conv = nn.Conv3d(channels, channels, kernel_size=3, padding=1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.norm = build_norm_layer(norm_cfg_for_dims(norm_cfg, 3), channels)[1]
        self.act = build_activation_layer(act_cfg or dict(type='ReLU'))
        self.classifier = nn.Conv3d(channels, num_classes, kernel_size=1)

    def forward(self, feat2d: torch.Tensor, feat3d: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.act(self.norm(self.dropout(self.conv(feat2d + feat3d)))))


@MODELS.register_module()
class HDenseUNet(BaseVolumeSegmentor):
    """H-DenseUNet on (N, 1, D, H, W) CT patches.

    Args:
        encoder2d / decoder2d: the 2D DenseUNet (``DenseNet`` arch 161 with ``stem_output``
            + ``DenseUNetHead``), ``in_channels = 2 * context_slices + 1``.
        encoder3d / decoder3d: the 3D DenseUNet (``spatial_dims=3``), ``in_channels = 1 +
            num_classes`` (the volume and the 2D scores).
        num_classes: classes (LiTS: 3).
        stage: ``'2d'`` | ``'3d'`` | ``'hybrid'`` (see the module docstring).
        context_slices: neighbours on either side of each slice fed to the 2D network (1:
            the paper's three adjacent slices).
        score_scale: factor on the 2D score maps before they join the volume (the official
            code multiplies by 250 on mean-subtracted HU input; 1 suits inputs in [0, 1]).
        lambda_2d: weight of the 2D loss in the ``'hybrid'`` stage (the paper's lambda, 0.5).
        hff_dropout: dropout in the HFF layer (0.3).
        losses / test_cfg / data_preprocessor: see :class:`BaseVolumeSegmentor`.
    """

    #: the 3D decoder's unused classifier, in checkpoints written before it was removed: dropped by
    #: name when such a checkpoint is loaded for evaluation (densedet.engine.checkpoint)
    obsolete_checkpoint_keys = ('decoder3d.conv_seg.weight', 'decoder3d.conv_seg.bias')

    def __init__(self,
                 encoder2d: dict,
                 decoder2d: dict,
                 encoder3d: dict,
                 decoder3d: dict,
                 num_classes: int = 3,
                 stage: str = 'hybrid',
                 context_slices: int = 1,
                 score_scale: float = 1.0,
                 lambda_2d: float = 0.5,
                 hff_dropout: float = 0.3,
                 losses: Sequence[dict] = DEFAULT_LOSSES,
                 data_preprocessor: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if stage not in STAGES:
            raise BadConfigError(f'HDenseUNet: stage must be one of {STAGES}, got {stage!r}')
        super().__init__(losses, data_preprocessor, train_cfg, test_cfg, init_cfg)
        self.encoder2d = MMSEG_MODELS.build(encoder2d)
        self.decoder2d = MMSEG_MODELS.build(decoder2d)
        self.encoder3d = MMSEG_MODELS.build(encoder3d)
        self.decoder3d = MMSEG_MODELS.build(decoder3d)
        # HFF classifies the fused features: the 3D decoder's own classifier would be an unused
        # parameter (no gradient; DDP would need find_unused_parameters for it). Its init_cfg only
        # initialises that classifier (mmseg's Normal override on conv_seg).
        self.decoder3d.conv_seg = None  # checkpoints written before its removal: obsolete_checkpoint_keys
        self.decoder3d.init_cfg = None
        width2d, width3d = self.decoder2d.channels, self.decoder3d.channels
        if width2d != width3d:
            raise BadConfigError(f'HDenseUNet: HFF adds the 2D and 3D features, their widths must match '
                                 f'(decoder2d {width2d}, decoder3d {width3d})')
        self.hff = HybridFeatureFusion(width2d, num_classes, hff_dropout)
        self.num_classes = num_classes
        self.stage = stage
        self.context_slices = context_slices
        self.score_scale = score_scale
        self.lambda_2d = lambda_2d
        # the branch a stage does not train is fixed: stage 2d does not run the 3D part at all
        fixed = {'2d': (self.encoder3d, self.decoder3d, self.hff), '3d': (self.encoder2d, self.decoder2d)}
        for module in fixed.get(stage, ()):
            for p in module.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        if self.stage == '3d':  # the 2D DenseUNet is fixed in this stage, BN statistics included
            self.encoder2d.eval()
            self.decoder2d.eval()
        return self

    # --- the two branches -------------------------------------------------------------------
    def forward_2d(self, volume: torch.Tensor):
        """2D DenseUNet on every slice: (features, logits), both as (N, C, D, H, W)."""
        slices = slices_with_neighbours(volume, self.context_slices)
        feats = self.decoder2d._forward_feature(list(self.encoder2d(slices)))
        logits = self.decoder2d.cls_seg(feats)
        size = slices.shape[2:]
        feats, logits = resize_logits(feats, size), resize_logits(logits, size)
        return slices_to_volume(feats, volume.shape[0]), slices_to_volume(logits, volume.shape[0])

    def forward_hybrid(self, volume: torch.Tensor, feat2d: torch.Tensor, logits2d: torch.Tensor) -> torch.Tensor:
        """3D DenseUNet on the volume + 2D scores, fused with the 2D features by HFF."""
        context = torch.cat([volume, logits2d * self.score_scale], dim=1)
        feat3d = resize_logits(self.decoder3d._forward_feature(list(self.encoder3d(context))), volume.shape[2:])
        return self.hff(feat2d, feat3d)

    def _branches(self, inputs: torch.Tensor):
        if self.stage == '3d':
            with torch.no_grad():
                feat2d, logits2d = self.forward_2d(inputs)
        else:
            feat2d, logits2d = self.forward_2d(inputs)
        return feat2d, logits2d

    # --- BaseVolumeSegmentor hooks ----------------------------------------------------------
    def forward_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        feat2d, logits2d = self._branches(inputs)
        if self.stage == '2d':
            return logits2d
        return self.forward_hybrid(inputs, feat2d, logits2d)

    def loss(self, inputs: torch.Tensor, data_samples: list) -> Dict[str, torch.Tensor]:
        target = self._targets(data_samples)
        feat2d, logits2d = self._branches(inputs)
        if self.stage == '2d':
            return self.compute_losses(logits2d, target, prefix='2d.')
        losses = self.compute_losses(self.forward_hybrid(inputs, feat2d, logits2d), target, prefix='hff.')
        if self.stage == 'hybrid' and self.lambda_2d > 0:
            losses.update(self.compute_losses(logits2d, target, prefix='2d.', scale=self.lambda_2d))
        return losses
