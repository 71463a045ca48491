"""DenseUNet decoder (H-DenseUNet, Li et al., IEEE TMI 2018, https://arxiv.org/abs/1709.07330).

The decoder of the official Keras code (xmengli/H-DenseUNet, ``denseunet.py``): per stage,
nearest upsampling, element-wise *addition* of the encoder feature of that resolution (a 1x1
projection where the widths differ, as its ``line0``), then 3x3 conv (with bias) - BN - ReLU.
With the DenseNet-161 encoder (stem 96 @ /2, blocks 384 @ /4, 768 @ /8, 2112 @ /16, 2208 @ /32)
and stage widths 768/384/96/96/64 this is the paper's 2D DenseUNet; with ``spatial_dims=3``,
DenseNet 3/4/12/8 growth 32 and widths 504/224/192/96/64 its 3D DenseUNet-65. The released
``hybridnet.py`` builds both without the skip additions (``skip_connections=False``
reproduces that); the 2D training script and the paper's figure have them.
"""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer

from densedet.errors import BadConfigError
from densedet.registry import MMSEG_MODELS

from ..layers import conv_type, norm_cfg_for_dims
from ..losses import deep_supervision_losses
from ..utils import check_in_channels, level_kernel_sizes
from .utils import MultiLevelHead, classifier_for_dims

Scale = Union[int, Sequence[int]]


@MMSEG_MODELS.register_module()
class DenseUNetHead(MultiLevelHead):
    """Additive-skip UNet decoder over a DenseNet encoder's outputs (finest first).

    Args:
        in_channels: encoder widths, finest first (``DenseNet(stem_output=True)`` gives
            the stride-2 stem as the first).
        up_channels: width of each upsampling stage's conv (coarsest first).
        scale_factors: an int for every stage, or one entry per stage, each an int or one
            factor per axis (H-DenseUNet 3D: ``[(1, 2, 2)] * 3 + [(2, 2, 2)] * 2``). Stages with
            a skip upsample to the skip's size instead.
        skip_connections: add the encoder level matching each stage's resolution (stage
            ``s`` takes level ``L - 2 - s``; stages past the finest level have none).
        last_dropout: dropout on the last stage's conv output, before its BN (0.3 in the
            official 2D code).
        kernel_sizes: the stages' conv kernels: an int for every stage, or one entry per stage (coarsest
            first), each an int or one per axis (nnU-Net plans ``(1, 3, 3)`` at full resolution of an
            anisotropic volume).
        deep_supervision: how many stages before the last also get a 1x1 classifier whose
            logits are trained (nnU-Net's deep supervision; 0: none, as H-DenseUNet). Inference
            uses the last stage only.
        loss_weights: one per supervised output, the last stage's first (default nnU-Net's:
            halving from the last stage, normalised to sum 1).
        spatial_dims: 2 or 3.
        **kwargs: :class:`BaseDecodeHead` arguments (``num_classes``, ``loss_decode``, ...);
            ``channels`` is ``up_channels[-1]``, ``dropout_ratio`` defaults to 0.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 up_channels: Sequence[int] = (768, 384, 96, 96, 64),
                 scale_factors: Union[Scale, Sequence[Scale]] = 2,
                 skip_connections: bool = True,
                 last_dropout: float = 0.0,
                 kernel_sizes: Union[Scale, Sequence[Scale]] = 3,
                 deep_supervision: int = 0,
                 loss_weights: Optional[Sequence[float]] = None,
                 spatial_dims: int = 2,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 **kwargs):
        in_channels, up_channels = list(in_channels), list(up_channels)
        if isinstance(scale_factors, int):
            scale_factors = [scale_factors] * len(up_channels)
        if len(scale_factors) != len(up_channels):
            raise BadConfigError(f'DenseUNetHead: {len(up_channels)} stages but {len(scale_factors)} scale_factors')
        if not 0 <= deep_supervision < len(up_channels):
            raise BadConfigError(f'DenseUNetHead: deep_supervision must be in 0..{len(up_channels) - 1} '
                                 f'(stages before the last), got {deep_supervision}')
        if loss_weights is None:
            loss_weights = [0.5**k for k in range(deep_supervision + 1)]
            loss_weights = [w / sum(loss_weights) for w in loss_weights]
        if len(loss_weights) != deep_supervision + 1:
            raise BadConfigError(f'DenseUNetHead: loss_weights needs {deep_supervision + 1} entries (the last '
                                 f'stage and {deep_supervision} supervised stages), got {list(loss_weights)}')
        kernel_sizes = level_kernel_sizes('DenseUNetHead', kernel_sizes, len(up_channels), spatial_dims)
        norm_cfg = norm_cfg_for_dims(norm_cfg, spatial_dims)
        act_cfg = act_cfg or dict(type='ReLU')
        conv_cfg = dict(type=f'Conv{spatial_dims}d')
        super().__init__(in_channels, up_channels[-1], norm_cfg=norm_cfg,
                         act_cfg=act_cfg, conv_cfg=conv_cfg, **kwargs)
        self.spatial_dims = spatial_dims
        self.scale_factors = [tuple(s) if isinstance(s, (list, tuple)) else s for s in scale_factors]
        self.skip_connections = skip_connections
        self.skip_levels = [len(in_channels) - 2 - s if skip_connections and len(in_channels) - 2 - s >= 0 else None
                            for s in range(len(up_channels))]
        conv = conv_type(spatial_dims)
        self.skip_projections = nn.ModuleList()
        self.up_convs = nn.ModuleList()
        prev = in_channels[-1]
        for s, width in enumerate(up_channels):
            level = self.skip_levels[s]
            needs_projection = level is not None and in_channels[level] != prev
            self.skip_projections.append(conv(in_channels[level], prev, kernel_size=1) if needs_projection else
                                         nn.Identity())
            # conv (bias, as Keras) [- dropout] - norm - act; dropout sits before the norm as in the official code
            drop = last_dropout if s == len(up_channels) - 1 else 0.0
            self.up_convs.append(nn.Sequential(
                conv(prev, width, kernel_size=kernel_sizes[s], padding=tuple(k // 2 for k in kernel_sizes[s])),
                *([nn.Dropout(drop)] if drop > 0 else []),
                build_norm_layer(norm_cfg, width)[1],
                build_activation_layer(act_cfg),
            ))
            prev = width
        classifier_for_dims(self, spatial_dims)
        self.deep_supervision = deep_supervision
        self.loss_weights = list(loss_weights)
        # classifiers of the supervised stages, the one before the last first
        self.aux_classifiers = nn.ModuleList(
            conv(up_channels[-2 - k], self.out_channels, kernel_size=1) for k in range(deep_supervision))

    def _forward_feature(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        """The last stage's features (64 channels at full resolution for H-DenseUNet)."""
        return self._stage_features(inputs)[-1]

    def _stage_features(self, inputs: List[torch.Tensor]) -> List[torch.Tensor]:
        """Every stage's output, coarsest first."""
        feats = self._transform_inputs(inputs)
        check_in_channels('DenseUNetHead', feats, self.in_channels)
        x = feats[-1]
        stages = []
        for s, up_conv in enumerate(self.up_convs):
            level = self.skip_levels[s]
            if level is not None:
                skip = feats[level]
                x = F.interpolate(x, size=skip.shape[2:], mode='nearest')
                x = x + self.skip_projections[s](skip)
            else:
                x = F.interpolate(x, scale_factor=self.scale_factors[s], mode='nearest')
            x = up_conv(x)
            stages.append(x)
        return stages

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        return self.cls_seg(self._forward_feature(inputs))

    def forward_heads(self, inputs: List[torch.Tensor]) -> List[torch.Tensor]:
        """Logits of the last stage and of the ``deep_supervision`` stages before it (each at its
        stage's resolution; the segmentor or ``loss_by_feat`` resizes them to the labels)."""
        stages = self._stage_features(inputs)
        return [self.cls_seg(stages[-1])] + [c(stages[-2 - k]) for k, c in enumerate(self.aux_classifiers)]

    def loss(self, inputs, batch_data_samples, train_cfg) -> dict:
        if not self.deep_supervision:
            return super().loss(inputs, batch_data_samples, train_cfg)
        return deep_supervision_losses(self.forward_heads(inputs), self.loss_weights,
                                       lambda logits: self.loss_by_feat(logits, batch_data_samples))
