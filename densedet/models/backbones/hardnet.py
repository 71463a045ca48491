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
import math
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn

from densedet.errors import BadConfigError
from densedet.registry import MODELS

from ..layers import ConvLayer, DWConvLayer, HarDBlock
from ..layers.harmonic import _BN
from ..utils import maybe_checkpoint
from .base import DenseBackbone


@MODELS.register_module()
class HarDNet(DenseBackbone):
    """HarDNet backbone for mmseg / mmdet.

    Args:
        arch: ``'39' | '68' | '85'`` (ints accepted), ``'fc70'`` (the encoder of FC-HarDNet-70, see
            below) or a dict with the keys of :attr:`arch_settings` entries.
        depthwise: the "DS" variants (depthwise-separable layers, strided depthwise
            convs instead of max pooling).
        out_indices: output levels (0..3 = strides 4/8/16/32; ``'fc70'``: 0..4 = 4/8/16/32/64).
        output_stride: 8, 16, 32 or 64 (default: the network's own, 32 or 64): the last
            downsamplings keep the resolution (pooling dropped, strided depthwise convs get
            stride 1) and later 3x3 convs dilate.
        frozen_stages: ``-1`` none, ``0`` the stem, ``k`` the stem and levels ``< k``.
        norm_eval: keep BatchNorms in eval mode while training.
        norm_cfg / act_cfg: mmcv configs (default: BN and the arch's activation, ReLU6 for the
            ImageNet HarDNets, ReLU for FC-HarDNet).
        with_cp: checkpoint each harmonic block together with its 1x1 transition conv.
        init_cfg: ``dict(type='Pretrained', checkpoint='hardnet68.pth')`` (official layout).

    ``'fc70'`` is FC-HarDNet-70's encoder (PingoLH/FCHarDNet): a four-conv stem (stride 4), five
    harmonic blocks each followed by a 1x1 conv, 2x2 average pooling between them. Its outputs are
    what the upsampling path (:class:`~densedet.models.decode_heads.FCHarDNetHead`) reads: the
    outputs of the first four *blocks* (strides 4-32, before their 1x1 convs) and the last 1x1
    conv (stride 64).
    """

    arch_settings: Dict[str, dict] = {
        '39': dict(stem=(24, 48), widths=(96, 320, 640, 1024), grmul=1.6, growth=(16, 20, 64, 160),
                   layers=(4, 16, 8, 4), downsample=(1, 1, 1, 0), dropout_before_last=False),
        '68': dict(stem=(32, 64), widths=(128, 256, 320, 640, 1024), grmul=1.7, growth=(14, 16, 20, 40, 160),
                   layers=(8, 16, 16, 16, 4), downsample=(1, 0, 1, 1, 0), dropout_before_last=False),
        '85': dict(stem=(48, 96), widths=(192, 256, 320, 480, 720, 1280), grmul=1.7,
                   growth=(24, 24, 28, 36, 48, 256), layers=(8, 16, 16, 16, 16, 4), downsample=(1, 0, 1, 0, 1, 0),
                   dropout_before_last=True),
        # FC-HarDNet-70 (official hardnet.py): stem convs and their strides, average pooling,
        # levels read at the blocks, ReLU
        'fc70': dict(stem=(16, 24, 32, 48), stem_strides=(2, 1, 2, 1), widths=(64, 96, 160, 224, 320), grmul=1.7,
                     growth=(10, 16, 18, 24, 32), layers=(4, 4, 8, 8, 8), downsample=(1, 1, 1, 1, 0),
                     dropout_before_last=False, pool='avg', level_output='block', act='ReLU'),
    }

    def __init__(self,
                 arch: Union[str, int, dict] = '68',
                 depthwise: bool = False,
                 in_channels: int = 3,
                 out_indices: Optional[Sequence[int]] = (0, 1, 2, 3),
                 output_stride: Optional[int] = None,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 norm_cfg: dict = _BN,
                 act_cfg: Optional[dict] = None,
                 with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 pretrained: Optional[str] = None):
        super().__init__(arch=arch, out_indices=out_indices, frozen_stages=frozen_stages,
                         output_stride=64 if output_stride is None else output_stride, norm_eval=norm_eval,
                         norm_cfg=norm_cfg, act_cfg=act_cfg, with_cp=with_cp, init_cfg=init_cfg,
                         pretrained=pretrained)
        arch = self.arch
        pool = arch.get('pool', 'max')
        level_output = arch.get('level_output', 'transition')
        if pool not in ('max', 'avg') or level_output not in ('transition', 'block'):
            raise BadConfigError(f"HarDNet: arch pool must be 'max' or 'avg' and level_output 'transition' or "
                                 f"'block', got {pool!r} / {level_output!r}")
        act_cfg = act_cfg or dict(type=arch.get('act', 'ReLU6'), inplace=True)
        layer_cfg = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)

        def downsample(ch, kernel, stride=2, dilation=1):
            if depthwise:  # keeps its parameters (and checkpoint keys) when it stops striding
                return DWConvLayer(ch, stride=stride, norm_cfg=norm_cfg, dilation=dilation)
            if stride == 1:
                return nn.Identity()
            if pool == 'avg':
                return nn.AvgPool2d(kernel_size=2, stride=2)
            return nn.MaxPool2d(kernel_size=kernel, stride=2, padding=kernel // 2 if kernel == 3 else 0)

        stem = arch['stem']
        if 'stem_strides' in arch:  # FC-HarDNet: 3x3 convs only
            ins = (in_channels, ) + tuple(stem[:-1])
            base = [ConvLayer(c_in, c_out, 3, stride=s, **layer_cfg)
                    for c_in, c_out, s in zip(ins, stem, arch['stem_strides'])]
            stride = math.prod(arch['stem_strides'])
        else:
            base = [ConvLayer(in_channels, stem[0], 3, stride=2, **layer_cfg),
                    ConvLayer(stem[0], stem[1], 1 if depthwise else 3, **layer_cfg),
                    downsample(stem[1], 3)]
            stride = 4
        self._stem_end = len(base)
        feature_info, self._level_ends = [], []
        # [start, end) of base modules from each block through its 1x1 conv: with_cp recomputes
        # them as one piece, so neither the layers' inputs nor the block's wide output are kept
        # (the block alone where the block's output is a level's output).
        self._segments = []
        channels, dilation = stem[-1], 1
        num_blocks = len(arch['layers'])
        plan = iter(self._stride_plan(stride, sum(map(bool, arch['downsample']))))
        for i in range(num_blocks):
            block = HarDBlock(channels, arch['growth'][i], arch['grmul'], arch['layers'][i], depthwise,
                              dilation=dilation, **layer_cfg)
            segment_start = len(base)
            base.append(block)
            last = i == num_blocks - 1
            if last and arch['dropout_before_last']:
                base.append(nn.Dropout(0.1))
            block_is_level = level_output == 'block' and not last
            if block_is_level:
                feature_info.append(dict(num_chs=block.out_channels, reduction=stride, module=f'base.{segment_start}'))
                self._level_ends.append(segment_start)
                self._segments.append((segment_start, segment_start + 1))
            base.append(ConvLayer(block.out_channels, arch['widths'][i], 1, **layer_cfg))
            if not block_is_level:
                self._segments.append((segment_start, len(base)))
            channels = arch['widths'][i]
            if not block_is_level and (arch['downsample'][i] or last):  # the last layer at this resolution
                feature_info.append(dict(num_chs=channels, reduction=stride, module=f'base.{len(base) - 1}'))
                self._level_ends.append(len(base) - 1)
            if arch['downsample'][i]:
                strided, stride, next_dilation = next(plan)
                base.append(downsample(channels, 2) if strided else
                            downsample(channels, 2, stride=1, dilation=dilation))
                dilation = next_dilation
        self.base = nn.ModuleList(base)
        self.output_stride = stride

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
            x = maybe_checkpoint(self.with_cp and i in segments, self._run, i, j, x)
            i = j
            if ends.get(i - 1) in self.out_indices:
                outs.append(x)
        return tuple(outs)
