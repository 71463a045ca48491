"""DLA-Up: iterative deep aggregation upsampling (IDA-Up) as an mmseg decode head.

"Deep Layer Aggregation", Yu et al., CVPR 2018, Sec. 3.3 / 4.3 (official ucbdrive/dla ``dla_up.py``:
``dla34up`` ... ``dla169up``). Module names follow the official ``dla_up.ida_{i}.{proj,up,node}_{k}``;
:func:`dlaup_official_to_mmseg` maps an official ``DLASeg`` checkpoint onto mmseg's ``EncoderDecoder`` with
the :class:`~densedet.models.backbones.DLA` backbone (``stem_output=True`` for stride 2) and this head.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer

from densedet.errors import BadConfigError, BadDataError
from densedet.registry import MMSEG_MODELS

from ..utils import check_in_channels
from .utils import MultiLevelHead


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


def _match_size(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Upsampled maps of inputs whose size is not a multiple of the stride miss the finer map's size by a
    pixel or so: resize them onto it (bilinear) rather than fail."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode='bilinear', align_corners=False)


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
        maps = [_match_size(getattr(self, f'up_{k}')(getattr(self, f'proj_{k}')(f)), size)
                for k, f in enumerate(feats)]
        x, nodes = maps[0], []
        for k in range(1, self.num_inputs):
            x = getattr(self, f'node_{k}')(torch.cat([x, maps[k]], 1))
            nodes.append(x)
        return x, nodes


class DLAUp(nn.Module):
    """DLA-Up over levels at strides ``s, 2s, 4s, ...`` (finest first): ``ida_0`` merges the two coarsest
    levels, each next IDA-Up adds one finer level to the previous one's node outputs, until the finest
    level's resolution and width are reached."""

    def __init__(self, in_channels: Sequence[int], node_kernel: int = 3, norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None):
        super().__init__()
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

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        feats = list(feats)
        for i in range(self.num_levels - 1):
            x, nodes = getattr(self, f'ida_{i}')(feats[-i - 2:])
            feats[-i - 1:] = nodes
        return x


@MMSEG_MODELS.register_module()
class DLAUpHead(MultiLevelHead):
    """DLA-Up on DLA levels at strides ``s, 2s, ...`` (finest first); the 1x1 classifier reads the finest
    level's resolution (stride 2 with the official ``down_ratio=2``: DLA's level 1 via
    ``stem_output=True``; stride 4 without it) and mmseg resizes the logits to the image (the official
    network's last step is a fixed bilinear transposed conv by the same factor).

    Args:
        in_channels: widths of the levels, finest first; each level must have twice the stride of the
            previous one (DLA-34 from level 1: ``[32, 64, 128, 256, 512]``).
        node_kernel: kernel of the aggregation nodes (3, as the official).
        **kwargs: :class:`BaseDecodeHead` arguments (``num_classes``, ``loss_decode``, ...). ``channels`` is
            derived (the finest level's width), ``input_transform`` is ``'multiple_select'``; ``dropout_ratio``
            defaults to 0 (the official network has none).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 node_kernel: int = 3,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 **kwargs):
        in_channels = list(in_channels)
        if len(in_channels) < 2:
            raise BadConfigError(f'DLAUpHead: in_channels needs at least two levels, got {in_channels}')
        norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
        act_cfg = act_cfg or dict(type='ReLU', inplace=True)
        super().__init__(in_channels, in_channels[0], norm_cfg=norm_cfg,
                         act_cfg=act_cfg, **kwargs)
        self.dla_up = DLAUp(in_channels, node_kernel, norm_cfg, act_cfg)

    def init_weights(self):
        super().init_weights()
        for m in self.dla_up.modules():  # the official init: N(0, sqrt(2 / (k * k * out))); upsamplers stay bilinear
            if type(m) is nn.Conv2d:
                nn.init.normal_(m.weight, 0, math.sqrt(2. / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        feats = self._transform_inputs(inputs)
        check_in_channels('DLAUpHead', feats, self.in_channels)
        for finer, coarser in zip(feats, feats[1:]):
            if -(-finer.shape[2] // 2) != coarser.shape[2] and finer.shape[2] // 2 != coarser.shape[2]:
                raise BadDataError(f'DLAUpHead: each level must have half the resolution of the previous one, '
                                   f'got sizes {[tuple(f.shape[2:]) for f in feats]}')
        return self.cls_seg(self.dla_up(feats))


def dlaup_official_to_mmseg(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """An official ``DLASeg`` checkpoint (``dla34up`` ...) -> mmseg ``EncoderDecoder`` keys (DLA backbone with
    ``stem_output=True`` + :class:`DLAUpHead`). Dropped, as they take no part in segmentation: the base's
    ImageNet classifier ``base.fc``, the ``project`` convs of the official trees of depth > 1 (never
    called; timm and densedet do not build them) and the fixed bilinear ``up`` (mmseg's resize)."""
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state_dict.items()}
    out = {}
    for key, value in state_dict.items():
        tree = key.split('.project.')[0]
        if key.startswith(('base.fc.', 'up.')) or ('.project.' in key and f'{tree}.root.conv.weight' not in state_dict):
            continue  # a tree with no root of its own has depth > 1: its project is never called
        if key.startswith('base.'):
            out['backbone.' + key[len('base.'):]] = value
        elif key.startswith('dla_up.'):
            out['decode_head.' + key] = value
        elif key.startswith('fc.0.'):
            out['decode_head.conv_seg.' + key[len('fc.0.'):]] = value
        else:
            raise BadConfigError(f'dlaup_official_to_mmseg: key {key!r} is not part of DLA-Up '
                                 '(expected base., dla_up., fc.0., up.)')
    return out
