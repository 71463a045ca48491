"""VoVNetV2 backbone (One-Shot Aggregation with identity mapping and effective SE).

"An Energy and GPU-Computation Efficient Backbone Network for Real-Time Object Detection",
Lee et al. 2019 (https://arxiv.org/abs/1904.09730) and "CenterMask: Real-Time Anchor-Free
Instance Segmentation", Lee & Park, CVPR 2020 (https://arxiv.org/abs/1911.06667), as in the
vovnet-detectron2 code. Module names follow timm's ``ese_vovnet*b`` models (V-19/39/57/99 are
timm's ``ese_vovnet19b/39b/57b/99b``), so their checkpoints load through ``init_cfg``.

An OSA block runs a chain of 3x3 conv-BN-ReLU layers, each on the previous output, then
concatenates the block input and every layer's output once (the shared
:class:`~densedet.models.layers.DenseBlock` with ``connectivity='chain'``), fuses them with a
1x1 conv, applies effective SE (last block of a stage) and adds the input (identity mapping,
every block after a stage's first).
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmcv.cnn.bricks import DropPath

from densedet.registry import MODELS

from ..layers import DenseBlock, EffectiveSE, kaiming_init_convs
from ..utils import maybe_checkpoint
from .base import DenseBackbone


class OSABlock(nn.Module):
    """One-shot aggregation block (VoVNetV2)."""

    def __init__(self,
                 in_channels: int,
                 mid_channels: int,
                 out_channels: int,
                 num_layers: int,
                 residual: bool,
                 use_ese: bool,
                 dilation: int = 1,
                 drop_path_rate: float = 0.0,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU', inplace=True),
                 with_cp: bool = False):
        super().__init__()
        layers = [
            ConvModule(in_channels if i == 0 else mid_channels, mid_channels, 3, padding=dilation, dilation=dilation,
                       norm_cfg=norm_cfg, act_cfg=act_cfg) for i in range(num_layers)
        ]
        self.conv_mid = DenseBlock(layers, layer_name='{}', connectivity='chain', with_cp=with_cp)
        self.conv_concat = ConvModule(in_channels + num_layers * mid_channels, out_channels, 1, norm_cfg=norm_cfg,
                                      act_cfg=act_cfg)
        self.attn = EffectiveSE(out_channels) if use_ese else None
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.residual = residual
        self.with_cp = with_cp

    def _aggregate(self, *features: torch.Tensor) -> torch.Tensor:
        out = self.conv_concat(torch.cat(features, 1))
        return out if self.attn is None else self.attn(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # with_cp: each OSA layer is checkpointed by conv_mid, and the aggregation (concat, 1x1
        # fusion, eSE) by itself, so the wide concatenation is never kept for backward either.
        features = self.conv_mid.forward_features(x)
        out = self.drop_path(maybe_checkpoint(self.with_cp, self._aggregate, *features))
        return out + x if self.residual else out


class OSAStage(nn.Module):
    """Max-pool (stages after the first; skipped when dilated), then OSA blocks."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, num_blocks: int, num_layers: int,
                 downsample: bool, dilation: int, drop_path_rates: Sequence[float], **block_kwargs):
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True) if downsample else nn.Identity()
        self.blocks = nn.Sequential(*[
            OSABlock(in_channels if i == 0 else out_channels, mid_channels, out_channels, num_layers,
                     residual=i > 0, use_ese=i == num_blocks - 1, dilation=dilation,
                     drop_path_rate=float(drop_path_rates[i]), **block_kwargs) for i in range(num_blocks)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.pool(x))


@MODELS.register_module()
class VoVNet(DenseBackbone):
    """VoVNetV2 (OSA + identity mapping + eSE) backbone for mmseg / mmdet.

    Args:
        arch: ``'19' | '39' | '57' | '99'`` (ints accepted) or a dict with the keys of
            :attr:`arch_settings` entries.
        out_indices: output levels (0..3 = strides 4/8/16/32).
        output_stride: 32, 16 or 8 (later stages dilate instead of pooling).
        frozen_stages: ``-1`` none, ``0`` the stem, ``k`` the stem and stages ``< k``.
        norm_eval: keep BatchNorms in eval mode while training.
        drop_path_rate: stochastic depth, rising per stage to this value.
        norm_cfg / act_cfg: mmcv configs.
        with_cp: checkpoint each OSA layer and each aggregation (concatenation, 1x1 fusion, eSE).
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` with a timm ``ese_vovnet*b`` checkpoint.
    """

    _common = dict(stem_channels=(64, 64, 128), mid_channels=(128, 160, 192, 224),
                   out_channels=(256, 512, 768, 1024))
    arch_settings: Dict[str, dict] = {
        '19': dict(_common, num_layers=3, num_blocks=(1, 1, 1, 1)),
        '39': dict(_common, num_layers=5, num_blocks=(1, 1, 2, 2)),
        '57': dict(_common, num_layers=5, num_blocks=(1, 1, 4, 3)),
        '99': dict(_common, num_layers=5, num_blocks=(1, 3, 9, 3)),
    }

    def __init__(self,
                 arch: Union[str, int, dict] = '39',
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 output_stride: int = 32,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 drop_path_rate: float = 0.0,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 act_cfg: dict = dict(type='ReLU', inplace=True),
                 with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 pretrained: Optional[str] = None):
        super().__init__(arch=arch, out_indices=out_indices, frozen_stages=frozen_stages,
                         output_stride=output_stride, norm_eval=norm_eval, norm_cfg=norm_cfg, act_cfg=act_cfg,
                         with_cp=with_cp, init_cfg=init_cfg, pretrained=pretrained)
        arch = self.arch
        stem = arch['stem_channels']
        conv = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.stem = nn.Sequential(
            ConvModule(in_channels, stem[0], 3, stride=2, padding=1, **conv),
            ConvModule(stem[0], stem[1], 3, padding=1, **conv),
            ConvModule(stem[1], stem[2], 3, stride=2, padding=1, **conv))

        num_blocks = arch['num_blocks']
        dpr = torch.linspace(0, drop_path_rate, sum(num_blocks)).split(list(num_blocks))
        stages, feature_info = [], []
        channels = stem[2]
        plan = [(False, 4, 1)] + self._stride_plan(4, 3)  # stage 1 keeps the stem's stride 4
        for i, (downsample, stride, dilation) in enumerate(plan):
            stages.append(OSAStage(channels, arch['mid_channels'][i], arch['out_channels'][i], num_blocks[i],
                                   arch['num_layers'], downsample, dilation, dpr[i], with_cp=with_cp, **conv))
            channels = arch['out_channels'][i]
            feature_info.append(dict(num_chs=channels, reduction=stride, module=f'stages.{i}'))
        self.stages = nn.Sequential(*stages)

        self._init_outputs(feature_info)

    def _frozen_modules(self):
        return [self.stem, *self.stages[:self.frozen_stages]]

    classifier_prefixes = ('head.', )

    def _default_init(self):
        kaiming_init_convs(self, mode='fan_out', nonlinearity='relu')  # timm's VoVNet init

    def forward(self, x: torch.Tensor) -> tuple:
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
