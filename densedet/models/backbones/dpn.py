"""DPN backbone (Dual Path Networks).

"Dual Path Networks", Chen et al., NeurIPS 2017 (https://arxiv.org/abs/1707.01629). Module
names follow timm's ``dpn68/92/98/131`` (themselves compatible with the original MXNet
weights), so their checkpoints load through ``init_cfg``.

Each block carries two paths in one tensor: a residual path (the first ``width`` channels,
updated by addition) and a densely connected path (the rest, growing by ``inc`` channels per
block by concatenation). Blocks are pre-activation (BN-ReLU-conv), so the last output level
goes through the network's final BN + ReLU (timm's ``conv5_bn_ac``).
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer

from densedet.registry import MODELS

from ..utils import maybe_checkpoint
from .base import DenseBackbone

_BN = dict(type='BN', requires_grad=True)
_RELU = dict(type='ReLU', inplace=True)


class BnAct(nn.Module):
    """BN + ReLU, kept as ``.bn`` (+ a parameter-free act) for checkpoint names."""

    def __init__(self, channels: int, norm_cfg: dict = _BN, act_cfg: dict = _RELU):
        super().__init__()
        self.bn = build_norm_layer(dict(norm_cfg, eps=1e-3), channels)[1]  # eps of the MXNet models
        self.act = build_activation_layer(act_cfg)

    def forward(self, x):
        return self.act(self.bn(x))


class ConvBnAct(BnAct):
    """The stem: conv -> BN -> ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, norm_cfg: dict = _BN,
                 act_cfg: dict = _RELU):
        super().__init__(out_ch, norm_cfg, act_cfg)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False)

    def forward(self, x):
        return super().forward(self.conv(x))


class BnActConv(BnAct):
    """Pre-activation conv: BN -> ReLU -> conv (no bias)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, dilation: int = 1,
                 norm_cfg: dict = _BN, act_cfg: dict = _RELU):
        super().__init__(in_ch, norm_cfg, act_cfg)
        pad = ((stride - 1) + dilation * (kernel - 1)) // 2
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, pad, dilation=dilation, groups=groups, bias=False)

    def forward(self, x):
        return self.conv(super().forward(x))


class DualPathBlock(nn.Module):
    """1x1 -> grouped 3x3 -> 1x1; adds ``width`` channels to the residual path and
    appends ``inc`` channels to the dense path. ``kind``: ``'proj'`` (first block of the
    first stage), ``'down'`` (first block of a later stage, stride 2) or ``'normal'``."""

    def __init__(self, in_ch: int, mid: int, width: int, inc: int, groups: int, kind: str, stride: int = 1,
                 dilation: int = 1, norm_cfg: dict = _BN, act_cfg: dict = _RELU):
        super().__init__()
        self.width = width
        cfg = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        # projects the block input into both paths (timm/MXNet name the strided one _s2)
        self.proj_name = {'proj': 'c1x1_w_s1', 'down': 'c1x1_w_s2'}.get(kind)
        if self.proj_name is not None:
            self.add_module(self.proj_name, BnActConv(in_ch, width + 2 * inc, 1, stride=stride, **cfg))
        self.c1x1_a = BnActConv(in_ch, mid, 1, **cfg)
        self.c3x3_b = BnActConv(mid, mid, 3, stride=stride, groups=groups, dilation=dilation, **cfg)
        self.c1x1_c = BnActConv(mid, width + inc, 1, **cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        paths = getattr(self, self.proj_name)(x) if self.proj_name else x
        out = self.c1x1_c(self.c3x3_b(self.c1x1_a(x)))
        w = self.width
        return torch.cat([paths[:, :w] + out[:, :w], paths[:, w:], out[:, w:]], dim=1)


@MODELS.register_module()
class DPN(DenseBackbone):
    """Dual Path Network backbone for mmseg / mmdet.

    Args:
        arch: ``'68' | '92' | '98' | '131'`` (ints accepted) or a dict with the keys of
            :attr:`arch_settings` entries.
        out_indices: output levels (0..3 = strides 4/8/16/32).
        output_stride: 32, 16 or 8 (later stages dilate instead of striding).
        frozen_stages: ``-1`` none, ``0`` the stem, ``k`` the stem and stages ``< k``.
        norm_eval: keep BatchNorms in eval mode while training.
        norm_cfg / act_cfg: mmcv configs (BN with ``eps=1e-3`` and ReLU by default).
        with_cp: checkpoint each dual path block (recomputed in backward, to save memory).
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` with a timm ``dpn*`` checkpoint.
    """

    arch_settings: Dict[str, dict] = {
        '68': dict(small=True, stem_channels=10, k_r=128, groups=32, depths=(3, 4, 12, 3), incs=(16, 32, 32, 64)),
        '92': dict(small=False, stem_channels=64, k_r=96, groups=32, depths=(3, 4, 20, 3), incs=(16, 32, 24, 128)),
        '98': dict(small=False, stem_channels=96, k_r=160, groups=40, depths=(3, 6, 20, 3),
                   incs=(16, 32, 32, 128)),
        '131': dict(small=False, stem_channels=128, k_r=160, groups=40, depths=(4, 8, 28, 3),
                    incs=(16, 32, 32, 128)),
    }

    def __init__(self,
                 arch: Union[str, int, dict] = '92',
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 output_stride: int = 32,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 norm_cfg: dict = _BN,
                 act_cfg: dict = _RELU,
                 with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 pretrained: Optional[str] = None):
        super().__init__(arch=arch, out_indices=out_indices, frozen_stages=frozen_stages,
                         output_stride=output_stride, norm_eval=norm_eval, norm_cfg=norm_cfg, act_cfg=act_cfg,
                         with_cp=with_cp, init_cfg=init_cfg, pretrained=pretrained)
        arch = self.arch
        stem = arch['stem_channels']
        kernel = 3 if arch['small'] else 7
        blocks = OrderedDict(conv1_1=ConvBnAct(in_channels, stem, kernel, stride=2, norm_cfg=norm_cfg, act_cfg=act_cfg),
                             conv1_pool=nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

        width_factor = 1 if arch['small'] else 4
        channels = stem
        plan = [(False, 4, 1)] + self._stride_plan(4, 3)  # conv2 keeps the stem's stride 4
        feature_info, self._level_ends = [], []
        for i, (base, depth, inc) in enumerate(zip((64, 128, 256, 512), arch['depths'], arch['incs'])):
            width, mid = base * width_factor, arch['k_r'] * base // 64
            downsample, stride, dilation = plan[i]
            block_stride = 2 if downsample else 1
            for j in range(1, depth + 1):
                kind = 'normal' if j > 1 else ('proj' if i == 0 else 'down')
                blocks[f'conv{i + 2}_{j}'] = DualPathBlock(channels, mid, width, inc, arch['groups'], kind,
                                                           stride=block_stride if j == 1 else 1, dilation=dilation,
                                                           norm_cfg=norm_cfg, act_cfg=act_cfg)
                channels = width + 3 * inc if j == 1 else channels + inc
            feature_info.append(dict(num_chs=channels, reduction=stride, module=f'features.conv{i + 2}_{depth}'))
            self._level_ends.append(len(blocks) - 1)
        blocks['conv5_bn_ac'] = BnAct(channels, norm_cfg, act_cfg)
        self.features = nn.Sequential(blocks)

        self._init_outputs(feature_info)

    def _frozen_modules(self):
        end = 2 if self.frozen_stages == 0 else self._level_ends[self.frozen_stages - 1] + 1
        modules = list(self.features[:end])
        if self.frozen_stages == 4:
            modules.append(self.features.conv5_bn_ac)
        return modules

    classifier_prefixes = ('classifier.', )

    def forward(self, x: torch.Tensor) -> tuple:
        outs = []
        ends = {end: level for level, end in enumerate(self._level_ends)}
        for i, block in enumerate(self.features[:-1]):
            x = maybe_checkpoint(self.with_cp and i >= 2, block, x)
            if ends.get(i) in self.out_indices:
                outs.append(self.features.conv5_bn_ac(x) if ends[i] == 3 else x)
        return tuple(outs)
