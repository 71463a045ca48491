"""DLA backbone (Deep Layer Aggregation).

"Deep Layer Aggregation", Yu et al., CVPR 2018 (https://arxiv.org/abs/1707.06484). Module
names follow timm's ``dla34/60/102`` so their checkpoints load through ``init_cfg``.

DLA aggregates iteratively (each resolution merges into the next) and hierarchically (trees of
blocks whose outputs, together with the tree's downsampled input at ``level_root`` trees, are
joined by a root node: concatenate -> 1x1 conv -> BN [-> + first child] -> ReLU). Outputs are
levels 2..5 at strides 4/8/16/32.
"""
import math
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer

from densedet.registry import MODELS

from ..utils import maybe_checkpoint
from .base import DenseBackbone

_BN = dict(type='BN', requires_grad=True)
_RELU = dict(type='ReLU', inplace=True)


def _conv_bn(in_ch, out_ch, kernel, stride=1, dilation=1, norm_cfg=_BN):
    pad = dilation * (kernel - 1) // 2
    return nn.Conv2d(in_ch, out_ch, kernel, stride, pad, dilation=dilation, bias=False), \
        build_norm_layer(norm_cfg, out_ch)[1]


class DLABasic(nn.Module):
    """Two 3x3 conv-BN with a residual (DLA-34)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1, norm_cfg: dict = _BN,
                 act_cfg: dict = _RELU):
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(in_ch, out_ch, 3, stride, dilation, norm_cfg)
        self.conv2, self.bn2 = _conv_bn(out_ch, out_ch, 3, 1, dilation, norm_cfg)
        self.relu = build_activation_layer(act_cfg)

    def forward(self, x, residual=None):
        residual = x if residual is None else residual
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + residual)


class DLABottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 bottleneck (half width) with a residual (DLA-60/102)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1, norm_cfg: dict = _BN,
                 act_cfg: dict = _RELU):
        super().__init__()
        mid = out_ch // 2
        self.conv1, self.bn1 = _conv_bn(in_ch, mid, 1, norm_cfg=norm_cfg)
        self.conv2, self.bn2 = _conv_bn(mid, mid, 3, stride, dilation, norm_cfg)
        self.conv3, self.bn3 = _conv_bn(mid, out_ch, 1, norm_cfg=norm_cfg)
        self.relu = build_activation_layer(act_cfg)

    def forward(self, x, residual=None):
        residual = x if residual is None else residual
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + residual)


class DLARoot(nn.Module):
    """Aggregation node: concat children -> 1x1 conv -> BN [+ first child] -> ReLU."""

    def __init__(self, in_ch: int, out_ch: int, residual: bool, norm_cfg: dict = _BN, act_cfg: dict = _RELU):
        super().__init__()
        self.conv, self.bn = _conv_bn(in_ch, out_ch, 1, norm_cfg=norm_cfg)
        self.relu = build_activation_layer(act_cfg)
        self.residual = residual

    def forward(self, children: List[torch.Tensor]) -> torch.Tensor:
        out = self.bn(self.conv(torch.cat(children, 1)))
        if self.residual:
            out = out + children[0]
        return self.relu(out)


class DLATree(nn.Module):
    """A tree of ``2 ** depth`` blocks with aggregation roots (hierarchical aggregation)."""

    def __init__(self, depth: int, block, in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1,
                 level_root: bool = False, root_dim: int = 0, root_residual: bool = False, norm_cfg: dict = _BN,
                 act_cfg: dict = _RELU):
        super().__init__()
        root_dim = (root_dim or 2 * out_ch) + (in_ch if level_root else 0)
        # ceil_mode: at odd sizes the pooled residual matches the strided conv (equal to the official otherwise)
        self.downsample = nn.MaxPool2d(stride, stride=stride, ceil_mode=True) if stride > 1 else nn.Identity()
        self.project = nn.Identity()
        self.level_root = level_root
        if depth == 1:
            self.tree1 = block(in_ch, out_ch, stride, dilation, norm_cfg, act_cfg)
            self.tree2 = block(out_ch, out_ch, 1, dilation, norm_cfg, act_cfg)
            if in_ch != out_ch:
                self.project = nn.Sequential(*_conv_bn(in_ch, out_ch, 1, norm_cfg=norm_cfg))
            self.root = DLARoot(root_dim, out_ch, root_residual, norm_cfg, act_cfg)
        else:
            sub = dict(root_residual=root_residual, norm_cfg=norm_cfg, act_cfg=act_cfg)
            self.tree1 = DLATree(depth - 1, block, in_ch, out_ch, stride, dilation, **sub)
            self.tree2 = DLATree(depth - 1, block, out_ch, out_ch, 1, dilation, root_dim=root_dim + out_ch, **sub)
            self.root = None

    def forward(self, x, residual=None, children: Optional[List[torch.Tensor]] = None):
        children = [] if children is None else children
        bottom = self.downsample(x)
        if self.level_root:
            children.append(bottom)
        x1 = self.tree1(x, self.project(bottom))
        if self.root is None:
            return self.tree2(x1, None, children + [x1])
        return self.root([self.tree2(x1), x1, *children])


@MODELS.register_module()
class DLA(DenseBackbone):
    """DLA backbone for mmseg / mmdet.

    Args:
        arch: ``'34' | '60' | '102'`` (ints accepted) or a dict with ``levels``,
            ``channels``, ``block`` (``'basic'`` or ``'bottleneck'``) and ``root_residual``.
        out_indices: output levels (0..3 = DLA levels 2..5, strides 4/8/16/32).
        output_stride: 32, 16 or 8 (the last levels dilate instead of downsampling).
        frozen_stages: ``-1`` none, ``0`` the stem (base layer, levels 0-1), ``k`` the
            stem and output levels ``< k``.
        norm_eval: keep BatchNorms in eval mode while training.
        norm_cfg / act_cfg: mmcv configs (BN and ReLU in the paper; e.g. ``dict(type='SyncBN')``).
        with_cp: checkpoint each output level (recomputed in backward, to save memory).
        stem_output: prepend level 1 (stride 2, the finest level DLA-Up aggregates) to the outputs;
            it is level 0 of ``feature_info`` then and ``out_indices`` / ``frozen_stages`` count it.
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` with a timm ``dla*`` checkpoint.
    """

    arch_settings: Dict[str, dict] = {
        '34': dict(levels=(1, 1, 1, 2, 2, 1), channels=(16, 32, 64, 128, 256, 512), block='basic',
                   root_residual=False),
        '60': dict(levels=(1, 1, 1, 2, 3, 1), channels=(16, 32, 128, 256, 512, 1024), block='bottleneck',
                   root_residual=False),
        '102': dict(levels=(1, 1, 1, 3, 4, 1), channels=(16, 32, 128, 256, 512, 1024), block='bottleneck',
                    root_residual=True),
    }
    blocks = {'basic': DLABasic, 'bottleneck': DLABottleneck}

    def __init__(self,
                 arch: Union[str, int, dict] = '34',
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 output_stride: int = 32,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 norm_cfg: dict = _BN,
                 act_cfg: dict = _RELU,
                 with_cp: bool = False,
                 stem_output: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 pretrained: Optional[str] = None):
        super().__init__(arch=arch, out_indices=out_indices, frozen_stages=frozen_stages,
                         output_stride=output_stride, norm_eval=norm_eval, norm_cfg=norm_cfg, act_cfg=act_cfg,
                         with_cp=with_cp, init_cfg=init_cfg, pretrained=pretrained)
        arch = self.arch
        self.stem_output = stem_output
        levels, ch = arch['levels'], arch['channels']
        block = self.blocks[arch['block']]
        self.base_layer = nn.Sequential(*_conv_bn(in_channels, ch[0], 7, norm_cfg=norm_cfg),
                                        build_activation_layer(act_cfg))
        self.level0 = self._conv_level(ch[0], ch[0], levels[0], 1, norm_cfg, act_cfg)
        self.level1 = self._conv_level(ch[0], ch[1], levels[1], 2, norm_cfg, act_cfg)
        feature_info = [dict(num_chs=ch[1], reduction=2, module='level1')] if stem_output else []
        for i, (strided, stride, dilation) in enumerate(self._stride_plan(2, 4), start=2):
            tree = DLATree(levels[i], block, ch[i - 1], ch[i], 2 if strided else 1, dilation, level_root=i > 2,
                           root_residual=arch['root_residual'], norm_cfg=norm_cfg, act_cfg=act_cfg)
            self.add_module(f'level{i}', tree)
            feature_info.append(dict(num_chs=ch[i], reduction=stride, module=f'level{i}'))
        self._init_outputs(feature_info)

    @staticmethod
    def _conv_level(in_ch, out_ch, convs, stride, norm_cfg, act_cfg):
        modules = []
        for i in range(convs):
            modules += [*_conv_bn(in_ch if i == 0 else out_ch, out_ch, 3, stride if i == 0 else 1, norm_cfg=norm_cfg),
                        build_activation_layer(act_cfg)]
        return nn.Sequential(*modules)

    def _frozen_modules(self):
        levels = range(max(self.frozen_stages - int(self.stem_output), 0))
        return [self.base_layer, self.level0, self.level1] + [getattr(self, f'level{i + 2}') for i in levels]

    classifier_prefixes = ('fc.', )

    def _default_init(self):  # the DLA paper's init: N(0, sqrt(2 / (k * k * out)))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0, math.sqrt(2. / fan_out))

    def forward(self, x: torch.Tensor) -> tuple:
        x = self.level1(self.level0(self.base_layer(x)))
        offset = int(self.stem_output)
        outs = [x] if self.stem_output and 0 in self.out_indices else []
        for i in range(4):
            x = maybe_checkpoint(self.with_cp, getattr(self, f'level{i + 2}'), x)
            if i + offset in self.out_indices:
                outs.append(x)
        return tuple(outs)
