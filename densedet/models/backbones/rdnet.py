"""RDNet backbone.

"DenseNets Reloaded: Paradigm Shift Beyond ResNets and ViTs", Kim et al., ECCV 2024
(https://arxiv.org/abs/2403.19588); official code naver-ai/rdnet, same network as timm's
``rdnet_*``. Module names follow timm's, so timm / Hugging Face / original NAVER
checkpoints load without conversion (see :func:`rdnet_checkpoint_filter`).

Structure: patchify stem (4x4 stride 4 conv + LayerNorm2d), then a sequence of
dense stages. Each stage after the first starts with a transition (LayerNorm2d +
conv compressing the width by 0.5, rounded down to a multiple of 8; 2x2 stride 2
when the stage downsamples, 1x1 otherwise) followed by a dense block of 3 mixer
layers (7x7 depthwise conv, LayerNorm2d, 1x1 expansion to 4x the layer's input
width, GELU, 1x1 to the growth rate, Effective-SE from the third stage on, layer
scale, drop path). The four outputs are taken at the last stage of each
resolution (strides 4/8/16/32).
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath

from densedet.errors import BadConfigError, ConfigKeyError
from densedet.registry import MODELS

from ..layers import DenseBlock, EffectiveSE, LayerNorm2d, kaiming_init_convs, make_dense_layers, round_down_to_multiple
from ..layers.cpu_paths import conv_gelu, depthwise_conv
from .base import DenseBackbone


class RDNetMixer(nn.Module):
    """7x7 depthwise conv -> LN -> 1x1 expand -> GELU -> 1x1 to ``out_channels`` [-> ESE]."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, use_ese: bool):
        super().__init__()
        layers = [
            nn.Conv2d(in_channels, in_channels, kernel_size=7, padding=3, groups=in_channels),
            LayerNorm2d(in_channels),
            nn.Conv2d(in_channels, mid_channels, kernel_size=1),
            nn.GELU(),
            nn.Conv2d(mid_channels, out_channels, kernel_size=1),
        ]
        if use_ese:
            layers.append(EffectiveSE(out_channels))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        depthwise, norm, expand, act, project = self.layers[:5]
        # bf16 on CPU: fp32 depthwise conv when training, conv + GELU in one call when predicting
        x = conv_gelu(expand, act, norm(depthwise_conv(depthwise, x)))
        x = project(x)
        for module in self.layers[5:]:  # Effective-SE
            x = module(x)
        return x


class RDNetLayer(nn.Module):
    """One dense layer of RDNet: the mixer, then layer scale and drop path."""

    def __init__(self,
                 in_channels: int,
                 growth_rate: int,
                 use_ese: bool,
                 bottleneck_ratio: float = 4.0,
                 ls_init_value: float = 1e-6,
                 drop_path_rate: float = 0.0):
        super().__init__()
        mid_channels = round_down_to_multiple(in_channels * bottleneck_ratio, 8)
        self.layers = RDNetMixer(in_channels, mid_channels, growth_rate, use_ese)
        self.gamma = nn.Parameter(torch.full((growth_rate, ), float(ls_init_value))) if ls_init_value > 0 else None
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(x)
        if self.gamma is not None:
            # In the activations' dtype: an fp32 scale would promote every new feature map under
            # autocast, and with it the dense concatenations and the casts before each conv.
            x = x * self.gamma.to(x.dtype).view(1, -1, 1, 1)
        return self.drop_path(x)


@MODELS.register_module()
class RDNet(DenseBackbone):
    """RDNet backbone for mmseg / mmdet.

    Args:
        arch: ``'tiny' | 'small' | 'base' | 'large'`` or a dict with the keys of
            :attr:`arch_settings` entries.
        in_channels: input image channels.
        out_indices: which of the four output levels (strides 4/8/16/32) to return.
        frozen_stages: ``-1`` trains everything; ``0`` freezes the stem; ``k >= 1``
            freezes the stem and every stage up to and including output level ``k - 1``.
        drop_path_rate: stochastic depth at the last stage; rates rise linearly
            per stage from 0 (timm's stage-wise rule).
        ls_init_value: initial layer-scale value (``<= 0`` disables layer scale).
        out_norm_cfg: optional norm applied to each returned level, e.g.
            ``dict(type='GN', num_groups=1)`` as the official detection wrapper.
        with_cp: memory-efficient mode, each dense layer is checkpointed.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH[, prefix=...])`` loads a
            timm / Hugging Face / NAVER RDNet checkpoint (``.pth`` or ``.safetensors``).
    """

    # Each row: stem width, growth rate per stage, and which stages open with a downsampling
    # transition; default_arch_values holds what all four share (3 layers per stage, Effective-SE
    # from the third stage on, 4x bottleneck, 0.5 transition compression, 4x4 patch stem).
    arch_settings: Dict[str, dict] = {
        'tiny': dict(stem_channels=64,
                     growth_rates=(64, 104, 128, 128, 128, 128, 224),
                     downsample=(False, True, True, False, False, False, True)),
        'small': dict(stem_channels=72,
                      growth_rates=(64, 128) + (128, ) * 7 + (240, ) * 2,
                      downsample=(False, True, True) + (False, ) * 6 + (True, False)),
        'base': dict(stem_channels=120,
                     growth_rates=(96, 128) + (168, ) * 7 + (336, ) * 2,
                     downsample=(False, True, True) + (False, ) * 6 + (True, False)),
        'large': dict(stem_channels=144,
                      growth_rates=(128, 192) + (256, ) * 8 + (360, ) * 2,
                      downsample=(False, True, True) + (False, ) * 7 + (True, False)),
    }
    default_arch_values = dict(layers_per_stage=3, first_ese_stage=2, bottleneck_ratio=4.0,
                               compression=0.5, patch_size=4)

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 drop_path_rate: float = 0.0,
                 ls_init_value: float = 1e-6,
                 out_norm_cfg: Optional[dict] = None,
                 with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 pretrained: Optional[str] = None):
        super().__init__(arch=arch, out_indices=out_indices, frozen_stages=frozen_stages, with_cp=with_cp,
                         init_cfg=init_cfg, pretrained=pretrained)
        arch = self.arch
        growth_rates, downsample = arch['growth_rates'], arch['downsample']
        num_stages = len(growth_rates)

        patch = arch['patch_size']
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, arch['stem_channels'], kernel_size=patch, stride=patch),
            LayerNorm2d(arch['stem_channels']))

        layers_per_stage = arch['layers_per_stage']
        dpr = torch.linspace(0, drop_path_rate, num_stages * layers_per_stage).split(layers_per_stage)

        stages, feature_info = [], []
        channels, stride = arch['stem_channels'], patch
        for i, growth in enumerate(growth_rates):
            stage = []
            if i > 0:
                reduced = round_down_to_multiple(channels * arch['compression'], 8)
                k = 2 if downsample[i] else 1
                stride *= k
                stage += [LayerNorm2d(channels), nn.Conv2d(channels, reduced, kernel_size=k, stride=k)]
                channels = reduced
            use_ese = i >= arch['first_ese_stage']
            layers = make_dense_layers(
                layers_per_stage, channels, growth,
                lambda j, c, growth=growth, use_ese=use_ese, rates=dpr[i]: RDNetLayer(
                    c, growth, use_ese, arch['bottleneck_ratio'], ls_init_value, float(rates[j])))
            stage.append(DenseBlock(layers, layer_name='dense_block{}', with_cp=with_cp))
            channels += layers_per_stage * growth
            stages.append(nn.Sequential(*stage))
            if i + 1 == num_stages or downsample[i + 1]:
                feature_info.append(dict(num_chs=channels, reduction=stride, module=f'dense_stages.{i}'))
        self.dense_stages = nn.Sequential(*stages)

        self._level_ends = [int(f['module'].rsplit('.', 1)[1]) for f in feature_info]
        self.out_norms = None
        self._init_outputs(feature_info)
        if out_norm_cfg is not None:
            self.out_norms = nn.ModuleList(build_norm_layer(out_norm_cfg, c)[1] for c in self.out_channels)

    def _resolve_arch(self, arch: Union[str, dict]) -> dict:
        arch = super()._resolve_arch(arch)
        missing = {'stem_channels', 'growth_rates', 'downsample'} - set(arch)
        if missing:
            raise ConfigKeyError(f'RDNet: custom arch is missing keys {sorted(missing)}')
        if len(arch['growth_rates']) != len(arch['downsample']):
            raise BadConfigError('RDNet: arch growth_rates and downsample must have the same length')
        return {**self.default_arch_values, **arch}

    @property
    def num_layer_groups(self) -> int:
        """Groups for layer-wise lr decay: the stem, then one per dense stage."""
        return 1 + len(self.dense_stages)

    def layer_group_id(self, param_name: str) -> int:
        """Stage-wise lr-decay group of a backbone parameter (0 = stem; the official recipe's groups,
        one per dense stage, finer than the base's one per level); unknown names are an error, as
        in the base."""
        self._require_parameter(param_name)
        if param_name.startswith('stem.'):
            return 0
        if param_name.startswith('dense_stages.'):
            return int(param_name.split('.')[1]) + 1
        return self.num_layer_groups  # output norms sit after the last stage

    def checkpoint_filter(self, state_dict):
        return rdnet_checkpoint_filter(state_dict)

    def _default_init(self):
        kaiming_init_convs(self)  # timm's RDNet init: He-normal convs, PyTorch defaults elsewhere

    def _frozen_modules(self):
        modules = [self.stem]
        if self.frozen_stages >= 1:
            modules += list(self.dense_stages[:self._level_ends[self.frozen_stages - 1] + 1])
        return modules

    def forward(self, x: torch.Tensor) -> tuple:
        x = self.stem(x)
        outs = []
        wanted = {self._level_ends[i]: i for i in self.out_indices}
        for i, stage in enumerate(self.dense_stages):
            x = stage(x)
            if i in wanted:
                outs.append(x)
        if self.out_norms is not None:
            outs = [norm(o) for norm, o in zip(self.out_norms, outs)]
        # LayerNorm2d leaves channels-last strides that the convolutions propagate; mmcv's
        # RoIAlign (CPU and CUDA) reads its input as dense NCHW memory and ignores strides.
        return tuple(o.contiguous() for o in outs)


def rdnet_checkpoint_filter(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Maps timm / NAVER RDNet checkpoints onto :class:`RDNet` names.

    Original NAVER checkpoints wrap the stem (``stem.stem.``); the classifier
    (``head.*``) and timm's optional final norm (``norm_pre.*``) are dropped.
    """
    out = {}
    for key, value in state_dict.items():
        if key.startswith(('head.', 'norm_pre.')):
            continue
        if key.startswith('stem.stem.'):
            key = 'stem.' + key[len('stem.stem.'):]
        out[key] = value
    return out


def convert_official_detseg_state_dict(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Maps a naver-ai/rdnet detection / segmentation checkpoint onto densedet names.

    The official mmdet 2.x / mmseg 0.x code wraps the network as a timm
    ``features_only`` model (``backbone.timm_model.``, top-level ``nn.Sequential``
    children flattened: ``dense_stages_3.`` for ``dense_stages.3.``, ``stem_0.`` for
    timm's ``stem.0.``) and normalises each output with ``backbone.norm_modules.i``
    (densedet's ``out_norms``, ``out_norm_cfg=dict(type='GN', num_groups=1)``).
    Necks and heads keep their names: mmdet 3.x / mmseg 1.x use the same ones.
    """
    backbone = {}
    out = {}
    for key, value in state_dict.items():
        if not key.startswith('backbone.'):
            out[key] = value
            continue
        name = key[len('backbone.'):]
        if name.startswith('timm_model.'):
            name = name[len('timm_model.'):]
        if name.startswith('norm_modules.'):
            name = 'out_norms.' + name[len('norm_modules.'):]
        head, sep, rest = name.partition('.')
        if '_' in head and head.rsplit('_', 1)[1].isdigit():  # flattened Sequential child
            parent, index = head.rsplit('_', 1)
            name = f'{parent}.{index}{sep}{rest}'
        backbone[name] = value
    out.update({'backbone.' + k: v for k, v in rdnet_checkpoint_filter(backbone).items()})
    return out
