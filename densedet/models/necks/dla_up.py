"""IDA-Up / DLA-Up: iterative deep aggregation upwards (Deep Layer Aggregation, Yu et al. CVPR 2018, Sec. 3.3;
official ucbdrive/dla ``dla_up.py``), shared by :class:`~densedet.models.decode_heads.DLAUpHead` (segmentation)
and :class:`DLAUpNeck` (one fine map for dense-prediction detectors such as mmdet's ``CenterNetHead``).
Module names follow the official ``ida_{i}.{proj,up,node}_{k}``.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmengine.model import BaseModule

from densedet.errors import BadConfigError, BadDataError
from densedet.registry import MODELS

from ..utils import check_in_channels, resize_logits


def _conv_norm_act(in_channels: int, out_channels: int, kernel: int, norm_cfg: dict, act_cfg: dict) -> nn.Sequential:
    """conv (no bias) - norm - activation, as ``0`` / ``1`` / ``2`` children (the official layout)."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
                         build_norm_layer(norm_cfg, out_channels)[1], build_activation_layer(act_cfg))


def bilinear_upsampler(channels: int, factor: int) -> nn.ConvTranspose2d:
    """A depthwise transposed conv initialised to bilinear upsampling by ``factor`` (kernel ``2 * factor``,
    output exactly ``factor`` times the input); trainable, as in DLA-Up."""
    up = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2, groups=channels,
                            bias=False)
    centre = factor - 0.5
    taps = torch.tensor([1 - abs(i - centre) / factor for i in range(2 * factor)])
    with torch.no_grad():
        up.weight.copy_((taps[:, None] * taps[None, :]).expand_as(up.weight))
    return up


class IDAUp(nn.Module):
    """One iterative aggregation: every input is projected to ``out_channels`` (1x1 conv-BN-ReLU where its width
    differs) and upsampled to the first input's resolution; then ``node_k`` (conv-BN-ReLU on the
    concatenation) merges the running aggregate with input ``k``, from the finest to the coarsest.
    Returns the final aggregate and every node's output."""

    def __init__(self, out_channels: int, in_channels: Sequence[int], up_factors: Sequence[int], node_kernel: int,
                 norm_cfg: dict, act_cfg: dict):
        super().__init__()
        for k, (channels, factor) in enumerate(zip(in_channels, up_factors)):
            proj = nn.Identity() if channels == out_channels else _conv_norm_act(channels, out_channels, 1, norm_cfg,
                                                                                  act_cfg)
            up = nn.Identity() if factor == 1 else bilinear_upsampler(out_channels, int(factor))
            self.add_module(f'proj_{k}', proj)
            self.add_module(f'up_{k}', up)
        for k in range(1, len(in_channels)):
            self.add_module(f'node_{k}', _conv_norm_act(2 * out_channels, out_channels, node_kernel, norm_cfg,
                                                        act_cfg))
        self.num_inputs = len(in_channels)

    def forward(self, feats: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        size = feats[0].shape[2:]
        # inputs whose size is not a multiple of the stride miss the finer map by a pixel: resized onto it
        maps = [resize_logits(getattr(self, f'up_{k}')(getattr(self, f'proj_{k}')(f)), size)
                for k, f in enumerate(feats)]
        x, nodes = maps[0], []
        for k in range(1, self.num_inputs):
            x = getattr(self, f'node_{k}')(torch.cat([x, maps[k]], 1))
            nodes.append(x)
        return x, nodes


class DLAUp(nn.Module):
    """DLA-Up over levels at strides ``s, 2s, 4s, ...`` (finest first): ``ida_0`` merges the two coarsest
    levels, each next IDA-Up adds one finer level to the previous one's node outputs, until the finest
    level's resolution and width are reached. ``norm_cfg`` / ``act_cfg``: BN and ReLU by default."""

    def __init__(self, in_channels: Sequence[int], node_kernel: int = 3, norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None):
        super().__init__()
        norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
        act_cfg = act_cfg or dict(type='ReLU', inplace=True)
        n = len(in_channels)
        scales = [2**i for i in range(n)]
        current = list(in_channels)  # the widths the next IDA-Up sees (earlier nodes replace levels)
        for i in range(n - 1):
            j = n - 2 - i
            self.add_module(f'ida_{i}', IDAUp(in_channels[j], current[j:], [s // scales[j] for s in scales[j:]],
                                              node_kernel, norm_cfg, act_cfg))
            scales[j + 1:] = [scales[j]] * (n - 1 - j)
            current[j + 1:] = [in_channels[j]] * (n - 1 - j)
        self.num_levels = n

    def init_weights(self):
        """The official init: N(0, sqrt(2 / (k * k * out))) for the convs; the upsamplers stay bilinear."""
        for m in self.modules():
            if type(m) is nn.Conv2d:
                nn.init.normal_(m.weight, 0, math.sqrt(2. / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        feats = list(feats)
        for i in range(self.num_levels - 1):
            x, nodes = getattr(self, f'ida_{i}')(feats[-i - 2:])
            feats[-i - 1:] = nodes
        return x


def check_level_sizes(owner: str, feats: Sequence[torch.Tensor]) -> None:
    """Each level must have half the resolution of the previous one (rounded either way)."""
    for finer, coarser in zip(feats, feats[1:]):
        if coarser.shape[2] not in (finer.shape[2] // 2, -(-finer.shape[2] // 2)):
            raise BadDataError(f'{owner}: each level must have half the resolution of the previous one, '
                               f'got sizes {[tuple(f.shape[2:]) for f in feats]}')


@MODELS.register_module()
class DLAUpNeck(BaseModule):
    """DLA-Up as a neck: aggregates the backbone's levels (finest first, strides ``s, 2s, ...``) into one map
    at the finest level's stride and width, returned as a 1-tuple (mmdet's ``CenterNetHead`` reads it: the
    CenterNet paper's DLA-34 detector with DLA-Up to stride 4).

    Args:
        in_channels: widths of the levels, finest first (DLA-34 levels 2-5: ``[64, 128, 256, 512]``).
        node_kernel: kernel of the aggregation nodes (3).
        norm_cfg / act_cfg: of the projections and nodes (BN, ReLU).
    """

    def __init__(self, in_channels: Sequence[int], node_kernel: int = 3, norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.in_channels = list(in_channels)
        if len(self.in_channels) < 2:
            raise BadConfigError(f'DLAUpNeck: in_channels needs at least two levels, got {self.in_channels}')
        self.out_channels = self.in_channels[0]
        self.dla_up = DLAUp(self.in_channels, node_kernel, norm_cfg, act_cfg)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor]:
        feats = list(inputs)
        check_in_channels('DLAUpNeck', feats, self.in_channels)
        check_level_sizes('DLAUpNeck', feats)
        return (self.dla_up(feats), )


__all__ = ['IDAUp', 'DLAUp', 'DLAUpNeck', 'bilinear_upsampler', 'check_level_sizes']
