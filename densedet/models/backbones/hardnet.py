"""HarDNet backbone (Harmonic Densely Connected Networks).

"HarDNet: A Low Memory Traffic Network", Chao et al., ICCV 2019
(https://arxiv.org/abs/1909.00948). Module names follow the official PyTorch code
(PingoLH/Pytorch-HarDNet: ``base.{i}`` with ``conv``/``norm`` children), so the official
checkpoints (``hardnet68.pth``, ``hardnet85.pth``, and with ``depthwise=True`` the
``hardnet39ds``/``hardnet68ds`` ones) load through ``init_cfg``.

A harmonic dense block connects layer ``k`` only to layers ``k - 2**n`` (the shared
:class:`~densedet.models.layers.DenseBlock` with :func:`~densedet.models.layers.harmonic_links`),
widens layers with many inputs by ``grmul`` per extra link, and outputs the odd layers and the
last one. The four outputs are taken at the end of each resolution (strides 4/8/16/32).
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer

from densedet.registry import MODELS

from ..layers import DenseBlock, harmonic_links
from ..utils import maybe_checkpoint
from .base import DenseBackbone

_BN = dict(type='BN', requires_grad=True)
_RELU6 = dict(type='ReLU6', inplace=True)


class ConvLayer(nn.Sequential):
    """conv -> norm -> ReLU6 (the official ``ConvLayer``)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, norm_cfg: dict = _BN,
                 act_cfg: dict = _RELU6, dilation: int = 1):
        super().__init__()
        pad = dilation * (kernel // 2)
        self.add_module('conv', nn.Conv2d(in_ch, out_ch, kernel, stride, pad, dilation=dilation, bias=False))
        self.add_module('norm', build_norm_layer(norm_cfg, out_ch)[1])
        self.add_module('relu', build_activation_layer(act_cfg))


class DWConvLayer(nn.Sequential):
    """3x3 depthwise conv -> norm, no activation (the official ``DWConvLayer``)."""

    def __init__(self, channels: int, stride: int = 1, norm_cfg: dict = _BN, dilation: int = 1):
        super().__init__()
        self.add_module('dwconv', nn.Conv2d(channels, channels, 3, stride, dilation, dilation=dilation,
                                            groups=channels, bias=False))
        self.add_module('norm', build_norm_layer(norm_cfg, channels)[1])


class CombConvLayer(nn.Sequential):
    """1x1 ConvLayer -> 3x3 depthwise (HarDNet-DS layers)."""

    def __init__(self, in_ch: int, out_ch: int, norm_cfg: dict = _BN, act_cfg: dict = _RELU6, dilation: int = 1):
        super().__init__()
        self.add_module('layer1', ConvLayer(in_ch, out_ch, 1, norm_cfg=norm_cfg, act_cfg=act_cfg))
        self.add_module('layer2', DWConvLayer(out_ch, norm_cfg=norm_cfg, dilation=dilation))


class HarDBlock(nn.Module):
    """Harmonic dense block; ``out_channels`` = the sum of the kept layers' widths."""

    def __init__(self, in_ch: int, growth: int, grmul: float, num_layers: int, depthwise: bool = False,
                 norm_cfg: dict = _BN, act_cfg: dict = _RELU6, dilation: int = 1):
        super().__init__()
        links = harmonic_links(num_layers)
        widths = [in_ch]
        layers = []
        for link in links:
            width = growth * grmul**(len(link) - 1)
            width = int(int(width + 1) / 2) * 2  # the official rounding to an even width
            layer_in = sum(widths[j] for j in link)
            layers.append(CombConvLayer(layer_in, width, norm_cfg, act_cfg, dilation) if depthwise else
                          ConvLayer(layer_in, width, norm_cfg=norm_cfg, act_cfg=act_cfg, dilation=dilation))
            widths.append(width)
        keep = [j for j in range(1, num_layers + 1) if j % 2 == 1 or j == num_layers]
        self.layers = DenseBlock(layers, layer_name='{}', connectivity=links, output=keep)
        self.out_channels = sum(widths[j] for j in keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@MODELS.register_module()
class HarDNet(DenseBackbone):
    """HarDNet backbone for mmseg / mmdet.

    Args:
        arch: ``'39' | '68' | '85'`` (ints accepted) or a dict with the keys of
            :attr:`arch_settings` entries.
        depthwise: the "DS" variants (depthwise-separable layers, strided depthwise
            convs instead of max pooling).
        out_indices: output levels (0..3 = strides 4/8/16/32).
        output_stride: 32, 16 or 8: the last downsamplings keep the resolution (max
            pooling dropped, strided depthwise convs get stride 1) and later 3x3 convs dilate.
        frozen_stages: ``-1`` none, ``0`` the stem, ``k`` the stem and levels ``< k``.
        norm_eval: keep BatchNorms in eval mode while training.
        norm_cfg / act_cfg: mmcv configs (the paper uses BN and ReLU6).
        with_cp: checkpoint each harmonic block together with its 1x1 transition conv.
        init_cfg: ``dict(type='Pretrained', checkpoint='hardnet68.pth')`` (official layout).
    """

    arch_settings: Dict[str, dict] = {
        '39': dict(stem=(24, 48), widths=(96, 320, 640, 1024), grmul=1.6, growth=(16, 20, 64, 160),
                   layers=(4, 16, 8, 4), downsample=(1, 1, 1, 0), dropout_before_last=False),
        '68': dict(stem=(32, 64), widths=(128, 256, 320, 640, 1024), grmul=1.7, growth=(14, 16, 20, 40, 160),
                   layers=(8, 16, 16, 16, 4), downsample=(1, 0, 1, 1, 0), dropout_before_last=False),
        '85': dict(stem=(48, 96), widths=(192, 256, 320, 480, 720, 1280), grmul=1.7,
                   growth=(24, 24, 28, 36, 48, 256), layers=(8, 16, 16, 16, 16, 4), downsample=(1, 0, 1, 0, 1, 0),
                   dropout_before_last=True),
    }

    def __init__(self,
                 arch: Union[str, int, dict] = '68',
                 depthwise: bool = False,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 output_stride: int = 32,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 norm_cfg: dict = _BN,
                 act_cfg: dict = _RELU6,
                 with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 pretrained: Optional[str] = None):
        super().__init__(arch=arch, out_indices=out_indices, frozen_stages=frozen_stages,
                         output_stride=output_stride, norm_eval=norm_eval, norm_cfg=norm_cfg, act_cfg=act_cfg,
                         with_cp=with_cp, init_cfg=init_cfg, pretrained=pretrained)
        arch = self.arch
        layer_cfg = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)

        def downsample(ch, kernel, stride=2, dilation=1):
            if depthwise:  # keeps its parameters (and checkpoint keys) when it stops striding
                return DWConvLayer(ch, stride=stride, norm_cfg=norm_cfg, dilation=dilation)
            if stride == 1:
                return nn.Identity()
            return nn.MaxPool2d(kernel_size=kernel, stride=2, padding=kernel // 2 if kernel == 3 else 0)

        stem = arch['stem']
        base = [ConvLayer(in_channels, stem[0], 3, stride=2, **layer_cfg),
                ConvLayer(stem[0], stem[1], 1 if depthwise else 3, **layer_cfg),
                downsample(stem[1], 3)]
        self._stem_end = len(base)
        feature_info, self._level_ends = [], []
        # [start, end) of base modules from each block through its 1x1 conv: with_cp recomputes
        # them as one piece, so neither the layers' inputs nor the block's wide output are kept.
        self._segments = []
        channels, stride, dilation = stem[1], 4, 1
        num_blocks = len(arch['layers'])
        plan = iter(self._stride_plan(stride, sum(map(bool, arch['downsample']))))
        for i in range(num_blocks):
            block = HarDBlock(channels, arch['growth'][i], arch['grmul'], arch['layers'][i], depthwise,
                              dilation=dilation, **layer_cfg)
            segment_start = len(base)
            base.append(block)
            if i == num_blocks - 1 and arch['dropout_before_last']:
                base.append(nn.Dropout(0.1))
            base.append(ConvLayer(block.out_channels, arch['widths'][i], 1, **layer_cfg))
            self._segments.append((segment_start, len(base)))
            channels = arch['widths'][i]
            if arch['downsample'][i] or i == num_blocks - 1:  # the last layer at this resolution
                feature_info.append(dict(num_chs=channels, reduction=stride, module=f'base.{len(base) - 1}'))
                self._level_ends.append(len(base) - 1)
            if arch['downsample'][i]:
                strided, stride, next_dilation = next(plan)
                base.append(downsample(channels, 2) if strided else
                            downsample(channels, 2, stride=1, dilation=dilation))
                dilation = next_dilation
        self.base = nn.ModuleList(base)

        self._init_outputs(feature_info)

    def _frozen_modules(self):
        end = self._stem_end if self.frozen_stages == 0 else self._level_ends[self.frozen_stages - 1] + 1
        return list(self.base[:end])

    def checkpoint_filter(self, state_dict):
        num = len(self.base)  # the official classifier is base.{num}
        return {k: v for k, v in state_dict.items() if not k.startswith(f'base.{num}.')}

    def _run(self, start: int, end: int, x: torch.Tensor) -> torch.Tensor:
        for module in self.base[start:end]:
            x = module(x)
        return x

    def forward(self, x: torch.Tensor) -> tuple:
        outs = []
        ends = {end: level for level, end in enumerate(self._level_ends)}
        segments = dict(self._segments)
        i = 0
        while i < len(self.base):
            j = segments.get(i, i + 1)
            x = maybe_checkpoint(self.with_cp and j > i + 1, self._run, i, j, x)
            i = j
            if ends.get(i - 1) in self.out_indices:
                outs.append(x)
        return tuple(outs)
