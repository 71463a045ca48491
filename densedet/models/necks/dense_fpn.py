"""DenseFPN: a feature pyramid whose top-down (and optional bottom-up) path is densely connected.

In mmdet's FPN each level receives only the next coarser level (``P_i = L_i + up(P_{i+1})``).
Here every pyramid node receives *all* coarser nodes, each resized to its resolution, the
multi-scale analogue of a DenseNet block:

    T_i = conv3x3(fuse(L_i, up(T_{i+1}), ..., up(T_{n-1})))           (top-down)
    B_i = conv3x3(fuse(T_i, down(B_0), ..., down(B_{i-1}))), B_0 = T_0 (bottom-up, optional)

``fuse`` is either concatenation + a 1x1 reduction (``fusion='concat'``) or BiFPN's fast
normalized fusion, ``sum_k relu(w_k) x_k / (eps + sum_k relu(w_k))`` (``fusion='weighted_sum'``).
The arguments, lateral convs and the extra levels (P6/P7) are those of mmdet's / mmseg's ``FPN``,
so the neck is a drop-in replacement in both frameworks.
"""
from typing import Callable, List, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from densedet.errors import BadConfigError, BadDataError
from densedet.registry import MODELS

FUSIONS = ('concat', 'weighted_sum')


class LevelFusion(nn.Module):
    """Fuses a level's own map with ``num_inputs - 1`` maps from other levels, all of ``channels``.

    Args:
        num_inputs: number of maps fused (1 means identity).
        channels: channels of every input and of the output.
        fusion: ``'concat'`` (resize, concatenate, 1x1 ConvModule back to ``channels``) or
            ``'weighted_sum'`` (resize, learned non-negative weights normalised to sum to one).
        eps: keeps the weighted-sum normalisation finite when all weights are zero.

    With ``linear_resize=True`` (upsampling by interpolation, which is linear per channel
    and so commutes with a 1x1 convolution), concat fusion applies each input's slice of
    the 1x1 weights at that input's own, coarser resolution and resizes the ``channels``-wide
    result: the same output as concatenating at full resolution, without the full-resolution
    ``num_inputs * channels``-wide convolution (DenseFPN's top-down path costs about FPN's).
    """

    def __init__(self, num_inputs: int, channels: int, fusion: str = 'concat', conv_cfg=None,
                 norm_cfg=None, act_cfg=None, eps: float = 1e-4):
        super().__init__()
        if fusion not in FUSIONS:
            raise BadConfigError(f'fusion must be one of {FUSIONS}, got {fusion!r}')
        self.num_inputs = num_inputs
        self.channels = channels
        self.fusion = fusion
        self.eps = eps
        self.reduce = None
        self.weights = None
        if num_inputs > 1 and fusion == 'concat':
            self.reduce = ConvModule(num_inputs * channels, channels, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                     act_cfg=act_cfg, inplace=False)
        elif num_inputs > 1:
            self.weights = nn.Parameter(torch.ones(num_inputs))

    def forward(self, own: torch.Tensor, others: List[torch.Tensor], resize: Callable,
                linear_resize: bool = False) -> torch.Tensor:
        if 1 + len(others) != self.num_inputs:
            raise ValueError(f'LevelFusion expects {self.num_inputs} maps, got {1 + len(others)}')
        if self.num_inputs == 1:
            return own
        if self.weights is not None:
            weights = F.relu(self.weights)
            weights = weights / (weights.sum() + self.eps)
            out = own * weights[0]
            for w, f in zip(weights[1:], others):
                out = out + resize(f, own) * w
            return out
        conv = self.reduce.conv
        if not (linear_resize and type(conv) is nn.Conv2d):
            return self.reduce(torch.cat([own] + [resize(f, own) for f in others], dim=1))
        # conv(cat(own, up(f_1), ...)) == conv_0(own) + sum_j up(conv_j(f_j)): project, then upsample.
        parts = conv.weight.split(self.channels, dim=1)
        out = F.conv2d(own, parts[0], conv.bias)
        for w, f in zip(parts[1:], others):
            out = out + resize(F.conv2d(f, w), own)
        if self.reduce.with_norm:
            out = self.reduce.norm(out)
        if self.reduce.with_activation:
            out = self.reduce.activate(out)
        return out


class PyramidNode(nn.Module):
    """One output of a dense pyramid path: fusion of its inputs, then a 3x3 ConvModule."""

    def __init__(self, num_inputs: int, channels: int, fusion: str, conv_cfg=None, norm_cfg=None, act_cfg=None):
        super().__init__()
        self.fuse = LevelFusion(num_inputs, channels, fusion, conv_cfg, norm_cfg, act_cfg)
        self.conv = ConvModule(channels, channels, 3, padding=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                               act_cfg=act_cfg, inplace=False)

    def forward(self, own: torch.Tensor, others: List[torch.Tensor], resize: Callable,
                linear_resize: bool = False) -> torch.Tensor:
        return self.conv(self.fuse(own, others, resize, linear_resize))


@MODELS.register_module()
class DenseFPN(BaseModule):
    """Densely connected feature pyramid (drop-in for mmdet's / mmseg's ``FPN``).

    Args:
        in_channels, out_channels, num_outs, start_level, end_level, add_extra_convs,
        relu_before_extra_convs, no_norm_on_lateral, conv_cfg, norm_cfg, act_cfg, init_cfg:
            as in mmdet's ``FPN``: the same levels are used, the same extra levels
            (max-pooled, or stride-2 convs on the input / lateral / output) are added.
        upsample_cfg: ``F.interpolate`` options for the top-down resizing; maps are always
            resized to the target's size (a ``scale_factor`` is ignored, coarser levels
            are several octaves away).
        fusion: ``'concat'`` or ``'weighted_sum'`` (see the module docstring).
        bottom_up: add the dense bottom-up path (PANet-style: every level above the finest
            receives all finer levels, adaptively max-pooled to its size; the finest level
            passes through, as PANet's N2 = P2).
        num_repeats: how many times the top-down (+ bottom-up) paths are stacked; later
            repeats take the previous repeat's outputs in place of the laterals.
    """

    def __init__(self,
                 in_channels: List[int],
                 out_channels: int,
                 num_outs: int,
                 start_level: int = 0,
                 end_level: int = -1,
                 add_extra_convs: Union[bool, str] = False,
                 relu_before_extra_convs: bool = False,
                 no_norm_on_lateral: bool = False,
                 conv_cfg=None,
                 norm_cfg=None,
                 act_cfg=None,
                 upsample_cfg: dict = dict(mode='nearest'),
                 fusion: str = 'concat',
                 bottom_up: bool = False,
                 num_repeats: int = 1,
                 init_cfg=dict(type='Xavier', layer='Conv2d', distribution='uniform')):
        super().__init__(init_cfg=init_cfg)
        if not isinstance(in_channels, (list, tuple)):
            raise TypeError(f'in_channels must be a list of ints, got {in_channels!r}')
        if fusion not in FUSIONS:
            raise BadConfigError(f'DenseFPN: fusion must be one of {FUSIONS}, got {fusion!r}')
        if num_repeats < 1:
            raise BadConfigError(f'DenseFPN: num_repeats must be >= 1, got {num_repeats}')
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_ins = len(in_channels)
        self.num_outs = num_outs
        self.relu_before_extra_convs = relu_before_extra_convs
        self.upsample_cfg = {k: v for k, v in upsample_cfg.items() if k != 'scale_factor'}
        self.fusion = fusion
        self.bottom_up = bottom_up
        self.num_repeats = num_repeats

        if end_level == -1 or end_level == self.num_ins - 1:
            self.backbone_end_level = self.num_ins
            if num_outs < self.num_ins - start_level:
                raise BadConfigError(f'DenseFPN: num_outs={num_outs} is fewer than the {self.num_ins - start_level} '
                                     f'input levels from start_level={start_level}')
        else:
            self.backbone_end_level = end_level + 1
            if not end_level < self.num_ins or num_outs != end_level - start_level + 1:
                raise BadConfigError(f'DenseFPN: with end_level={end_level}, num_outs must be '
                                     f'{end_level - start_level + 1} and end_level < {self.num_ins}')
        self.start_level = start_level
        self.end_level = end_level
        if isinstance(add_extra_convs, str):
            if add_extra_convs not in ('on_input', 'on_lateral', 'on_output'):
                raise BadConfigError(f'DenseFPN: add_extra_convs={add_extra_convs!r}; expected a bool or '
                                     "'on_input' | 'on_lateral' | 'on_output'")
        elif add_extra_convs:
            add_extra_convs = 'on_input'
        self.add_extra_convs = add_extra_convs

        num_levels = self.backbone_end_level - start_level
        conv_kw = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.lateral_convs = nn.ModuleList(
            ConvModule(in_channels[i], out_channels, 1, conv_cfg=conv_cfg,
                       norm_cfg=None if no_norm_on_lateral else norm_cfg, act_cfg=act_cfg, inplace=False)
            for i in range(start_level, self.backbone_end_level))
        # top_down[r][i] fuses level i with the num_levels - 1 - i coarser nodes;
        # bottom_up_nodes[r][i - 1] fuses level i >= 1 with the i finer nodes (B_0 = T_0, as PANet's N2 = P2).
        self.top_down = nn.ModuleList(
            nn.ModuleList(PyramidNode(num_levels - i, out_channels, fusion, **conv_kw) for i in range(num_levels))
            for _ in range(num_repeats))
        self.bottom_up_nodes = nn.ModuleList(
            nn.ModuleList(PyramidNode(i + 1, out_channels, fusion, **conv_kw) for i in range(1, num_levels))
            for _ in range(num_repeats)) if bottom_up else None

        self.extra_convs = nn.ModuleList()
        extra_levels = num_outs - self.backbone_end_level + start_level
        if self.add_extra_convs and extra_levels >= 1:
            for i in range(extra_levels):
                channels = (in_channels[self.backbone_end_level - 1]
                            if i == 0 and self.add_extra_convs == 'on_input' else out_channels)
                self.extra_convs.append(
                    ConvModule(channels, out_channels, 3, stride=2, padding=1, inplace=False, **conv_kw))

    def _upsample(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return x if x.shape[2:] == like.shape[2:] else F.interpolate(x, size=like.shape[2:], **self.upsample_cfg)

    @staticmethod
    def _downsample(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return x if x.shape[2:] == like.shape[2:] else F.adaptive_max_pool2d(x, like.shape[2:])

    def _dense_top_down(self, nodes: nn.ModuleList, feats: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        outs = [None] * len(feats)
        for i in range(len(feats) - 1, -1, -1):
            outs[i] = nodes[i](feats[i], outs[i + 1:], self._upsample, linear_resize=True)
        return outs

    def _dense_bottom_up(self, nodes: nn.ModuleList, feats: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        outs = [feats[0]]
        for node, feat in zip(nodes, feats[1:]):
            outs.append(node(feat, outs, self._downsample))
        return outs

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple:
        if len(inputs) != self.num_ins:
            raise BadDataError(f'DenseFPN: expected {self.num_ins} input levels, got {len(inputs)}')
        laterals = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)]
        feats = laterals
        for r in range(self.num_repeats):
            feats = self._dense_top_down(self.top_down[r], feats)
            if self.bottom_up_nodes is not None:
                feats = self._dense_bottom_up(self.bottom_up_nodes[r], feats)
        outs = list(feats)

        # Extra levels exactly as FPN: max-pooling, or stride-2 convs on input / lateral / output.
        if self.num_outs > len(outs):
            if not self.add_extra_convs:
                while len(outs) < self.num_outs:
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                source = {'on_input': inputs[self.backbone_end_level - 1], 'on_lateral': laterals[-1],
                          'on_output': outs[-1]}[self.add_extra_convs]
                outs.append(self.extra_convs[0](source))
                for conv in self.extra_convs[1:]:
                    outs.append(conv(F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]))
        return tuple(outs)
