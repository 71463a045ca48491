"""DenseNet backbone.

"Densely Connected Convolutional Networks", Huang et al., CVPR 2017
(https://arxiv.org/abs/1608.06993); DenseNet-BC with the layout and module names of
torchvision's ``densenet121/169/201/161``, so torchvision checkpoints (including the
old-style ``norm.1`` keys torchvision itself remaps) load through ``init_cfg``.

The four outputs are the dense block outputs at strides 4/8/16/32, taken before each
transition (DenseNet-121: 256/512/1024/1024 channels); the last one goes through the final
``norm5`` + ReLU as in torchvision's classifier path. ``with_cp=True`` is the
memory-efficient DenseNet of Pleiss et al. (each concat-BN-ReLU-conv layer checkpointed).

``spatial_dims=3`` builds the same network for volumes (the encoders of H-DenseUNet's
3D DenseUNet and of :class:`~densedet.models.decode_heads.DenseUNetHead` baselines);
``transition_pool_size=(1, 2, 2)`` keeps the depth, ``stem_output`` also returns the
stride-2 stem activation (the finest skip of a DenseUNet). For anisotropic volumes ``stem_stride=(1, 2, 2)``
keeps every slice through the stem conv (as nnU-Net's first pooling does) and ``input_skip`` adds a small
conv block at the input's resolution, a full-resolution skip for the decoder (nnU-Net's first stage).
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer

from densedet.errors import BadConfigError
from densedet.registry import MODELS

from ..layers import (
    CrossStagePartial,
    DenseBlock,
    DenseLayer,
    DenseTransition,
    check_csp_ratio,
    conv_block,
    conv_type,
    make_dense_layers,
    max_pool_type,
    norm_cfg_for_dims,
)
from ..utils import level_strides, total_stride
from .base import DenseBackbone


@MODELS.register_module()
class DenseNet(DenseBackbone):
    """DenseNet-BC backbone for mmseg / mmdet.

    Args:
        arch: ``'121' | '169' | '201' | '161'`` (ints accepted), the CSPDenseNets ``'csp121' |
            'csp201'`` or a dict with ``growth_rate``, ``block_config``, ``stem_channels`` and
            optionally ``csp_ratio``.
        in_channels: input image channels.
        out_indices: output levels to return (0..3 = strides 4/8/16/32).
        output_stride: 32 (default), 16 or 8; the last one or two transitions stop
            pooling and the following blocks use dilated 3x3 convs instead, so
            mmseg's dilated heads (PSPHead, ASPPHead) work.
        frozen_stages: ``-1`` none, ``0`` the stem, ``k`` the stem and levels ``< k``
            (each level = the transition before it + its dense block).
        norm_eval: keep every BatchNorm in eval mode during training.
        drop_rate: dropout after each dense layer.
        norm_cfg / act_cfg: mmcv configs of the norms and activations.
        with_cp: memory-efficient mode (each dense layer checkpointed).
        spatial_dims: 2 (images) or 3 (volumes, N x C x D x H x W).
        transition_pool_size: window = stride of the transitions' average pooling, an int
            or one per spatial dim.
        csp_ratio: cross-stage partial dense stages (CSPNet): the share of each stage's input channels
            that goes through its dense block (and a partial transition that halves it), the rest
            passing straight to the stage's transition (:class:`~densedet.models.layers.CrossStagePartial`);
            in (0, 1), ``None`` = the arch's (plain DenseNet: none, ``'csp*'``: 0.5).
        stem_output: prepend the stem's conv-norm-act output (stride 2, before the max
            pooling) to the outputs; it is level 0 of ``feature_info`` then and
            ``out_indices`` / ``frozen_stages`` count it.
        stem_stride / stem_pool_stride: strides of the stem's 7x7 conv and of its max pooling, an int
            or one per spatial dim (``(1, 2, 2)`` keeps the slices of an anisotropic volume).
        input_skip: ``None`` or the arguments of :func:`~densedet.models.layers.conv_block`
            (``out_channels``, optionally ``num_convs``, ``kernel_size``): a conv block on the input at
            full resolution, prepended to the outputs as level 0 (before the stem's; it counts in
            ``out_indices`` and freezes with the stem).
        init_cfg: ``dict(type='Pretrained', checkpoint='densenet121-a639ec97.pth')`` loads
            a torchvision checkpoint.
    """

    arch_settings: Dict[str, dict] = {
        '121': dict(growth_rate=32, block_config=(6, 12, 24, 16), stem_channels=64),
        '169': dict(growth_rate=32, block_config=(6, 12, 32, 32), stem_channels=64),
        '201': dict(growth_rate=32, block_config=(6, 12, 48, 32), stem_channels=64),
        '161': dict(growth_rate=48, block_config=(6, 12, 36, 24), stem_channels=96),
        # CSPNet's CSPDenseNets: the same stages, each a cross-stage partial stage with half the channels
        # through the dense block
        'csp121': dict(growth_rate=32, block_config=(6, 12, 24, 16), stem_channels=64, csp_ratio=0.5),
        'csp201': dict(growth_rate=32, block_config=(6, 12, 48, 32), stem_channels=64, csp_ratio=0.5),
    }

    def __init__(self,
                 arch: Union[str, int, dict] = '121',
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 output_stride: int = 32,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 drop_rate: float = 0.0,
                 bn_size: int = 4,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 act_cfg: dict = dict(type='ReLU', inplace=True),
                 with_cp: bool = False,
                 spatial_dims: int = 2,
                 transition_pool_size: Union[int, Sequence[int]] = 2,
                 stem_output: bool = False,
                 stem_stride: Union[int, Sequence[int]] = 2,
                 stem_pool_stride: Union[int, Sequence[int]] = 2,
                 input_skip: Optional[dict] = None,
                 csp_ratio: Optional[float] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 pretrained: Optional[str] = None):
        super().__init__(arch=arch, out_indices=out_indices, frozen_stages=frozen_stages,
                         output_stride=output_stride, norm_eval=norm_eval, norm_cfg=norm_cfg, act_cfg=act_cfg,
                         with_cp=with_cp, init_cfg=init_cfg, pretrained=pretrained)
        arch = self.arch
        growth, blocks = arch['growth_rate'], arch['block_config']
        self.stem_output = stem_output
        csp_ratio = arch.get('csp_ratio') if csp_ratio is None else csp_ratio
        if csp_ratio is not None:
            check_csp_ratio(csp_ratio, 'DenseNet')
        norm_cfg = norm_cfg_for_dims(norm_cfg, spatial_dims)

        stem_info = []
        # registered first: it runs first (layer groups follow registration order)
        self.input_skip = None
        if input_skip is not None:
            if 'out_channels' not in input_skip or set(input_skip) - {'out_channels', 'num_convs', 'kernel_size'}:
                raise BadConfigError(f'DenseNet: input_skip takes out_channels (required), num_convs and '
                                     f'kernel_size, got {dict(input_skip)}')
            self.input_skip = conv_block(in_channels, spatial_dims=spatial_dims, norm_cfg=norm_cfg, act_cfg=act_cfg,
                                         **input_skip)
            stem_info.append(dict(num_chs=input_skip['out_channels'], reduction=1, module='input_skip'))
        channels = arch['stem_channels']
        stem_stride, stem_pool_stride = level_strides('DenseNet', [stem_stride, stem_pool_stride], 2, spatial_dims)
        features = OrderedDict([
            ('conv0', conv_type(spatial_dims)(in_channels, channels, kernel_size=7, stride=stem_stride, padding=3,
                                              bias=False)),
            ('norm0', build_norm_layer(norm_cfg, channels)[1]),
            ('relu0', build_activation_layer(act_cfg)),
            ('pool0', max_pool_type(spatial_dims)(kernel_size=3, stride=stem_pool_stride, padding=1)),
        ])
        # reductions are the largest per-axis stride (the in-plane one of an anisotropic volume)
        stem_reduction = max(total_stride([stem_stride], spatial_dims))
        first_reduction = max(total_stride([stem_stride, stem_pool_stride], spatial_dims))
        if stem_output:
            stem_info.append(dict(num_chs=channels, reduction=stem_reduction, module='features.relu0'))
        # the first block follows the stem's pooling; each transition after it pools (or dilates)
        plan = [(True, first_reduction, 1)] + self._stride_plan(first_reduction, len(blocks) - 1)
        feature_info = []
        for i, (num_layers, (downsample, stride, dilation)) in enumerate(zip(blocks, plan)):
            if i > 0:
                pool = 'avg' if downsample else None
                features[f'transition{i}'] = DenseTransition(channels, channels // 2, pool=pool, norm_cfg=norm_cfg,
                                                             act_cfg=act_cfg, spatial_dims=spatial_dims,
                                                             pool_size=transition_pool_size)
                channels //= 2

            def dense_block(in_ch, n=num_layers, d=dilation):
                layers = make_dense_layers(
                    n, in_ch, growth,
                    lambda j, c: DenseLayer(c, growth, bn_size, drop_rate, dilation=d, norm_cfg=norm_cfg,
                                            act_cfg=act_cfg, spatial_dims=spatial_dims))
                return DenseBlock(layers, layer_name='denselayer{}', first_index=1, with_cp=with_cp), in_ch + n * growth

            if csp_ratio is None:
                features[f'denseblock{i + 1}'], channels = dense_block(channels)
            else:
                stage = CrossStagePartial(channels, csp_ratio, dense_block, spatial_dims, norm_cfg, act_cfg)
                features[f'denseblock{i + 1}'], channels = stage, stage.out_channels
            feature_info.append(dict(num_chs=channels, reduction=stride, module=f'features.denseblock{i + 1}'))
        features['norm5'] = build_norm_layer(norm_cfg, channels)[1]
        self.features = nn.Sequential(features)
        self.num_blocks = len(blocks)
        self.num_stem_levels = len(stem_info)
        self.final_act = build_activation_layer(act_cfg)

        self._init_outputs(stem_info + feature_info)

    def _level_modules(self, level: int) -> List[nn.Module]:
        names = ([f'transition{level}'] if level > 0 else []) + [f'denseblock{level + 1}']
        if level == self.num_blocks - 1:
            names.append('norm5')
        return [getattr(self.features, n) for n in names]

    def _frozen_modules(self):
        modules = [self.features.conv0, self.features.norm0]
        if self.input_skip is not None:
            modules.append(self.input_skip)
        for level in range(self.frozen_stages - self.num_stem_levels):
            modules += self._level_modules(level)
        return modules

    def checkpoint_filter(self, state_dict):
        return torchvision_densenet_filter(state_dict)

    def _default_init(self):  # torchvision's init
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple:
        f = self.features
        outs = [self.input_skip(x)] if self.input_skip is not None and 0 in self.out_indices else []
        stem = f.relu0(f.norm0(f.conv0(x)))
        x = f.pool0(stem)
        if self.stem_output and self.num_stem_levels - 1 in self.out_indices:
            outs.append(stem)
        offset = self.num_stem_levels
        last = self.num_blocks - 1
        for level in range(self.num_blocks):
            if level > 0:
                x = getattr(f, f'transition{level}')(x)
            x = getattr(f, f'denseblock{level + 1}')(x)
            out = self.final_act(f.norm5(x)) if level == last else x
            if level + offset in self.out_indices:
                outs.append(out)
        return tuple(outs)


_OLD_TORCHVISION_KEY = re.compile(r'^(.*denselayer\d+\.(?:norm|relu|conv))\.'
                                  r'((?:[12])\.(?:weight|bias|running_mean|running_var))$')


def torchvision_densenet_filter(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """torchvision DenseNet checkpoints -> :class:`DenseNet` names (drops the classifier,
    renames the old ``denselayerN.norm.1`` keys to ``denselayerN.norm1``)."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith('classifier.'):
            continue
        match = _OLD_TORCHVISION_KEY.match(key)
        if match:
            key = match.group(1) + match.group(2)
        out[key] = value
    return out
