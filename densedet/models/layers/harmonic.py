"""Harmonic dense blocks (HarDNet, Chao et al., ICCV 2019), shared by the HarDNet backbone and the
FC-HarDNet decode head.

Module names follow the official code (PingoLH/Pytorch-HarDNet and PingoLH/FCHarDNet: ``conv`` /
``norm`` children, a block's ``layers.{i}``) so both repositories' checkpoints load.
"""
import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer

from .dense import DenseBlock, harmonic_links

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
                 norm_cfg: dict = _BN, act_cfg: dict = _RELU6, dilation: int = 1, with_cp: bool = False):
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
        self.layers = DenseBlock(layers, layer_name='{}', connectivity=links, output=keep, with_cp=with_cp)
        self.out_channels = sum(widths[j] for j in keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


__all__ = ['ConvLayer', 'DWConvLayer', 'CombConvLayer', 'HarDBlock']
