"""FC-DenseNet ("The One Hundred Layers Tiramisu") encoder.

Jégou et al., "The One Hundred Layers Tiramisu: Fully Convolutional DenseNets for Semantic
Segmentation", CVPRW 2017 (https://arxiv.org/abs/1611.09326); official Lasagne code
SimJeg/FC-DenseNet. The network is split the OpenMMLab way: this backbone is the
downsampling path (3x3 conv with 48 maps, then per level a dense block of BN-ReLU-3x3 conv
layers with dropout, kept as a skip, and a transition down BN-ReLU-1x1 conv-dropout-2x2 max
pool) plus the bottleneck dense block; :class:`~densedet.models.decode_heads.FCDenseNetHead`
is the upsampling path. Every convolution has a bias, as in the Lasagne layers.

Outputs, finest first: the ``n_pool`` skips (the full stack after each down block, strides
1, 2, ..., 2**(n_pool-1)) and, last, **only the new maps** of the bottleneck block (stride
2**n_pool): the paper upsamples only the maps a block added, never the whole stack.
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn

from densedet.errors import BadConfigError, BadDataError, ConfigKeyError
from densedet.registry import MODELS

from ..layers import DenseTransition, conv_type, fc_dense_block, kaiming_init_convs
from ..utils import check_poolable
from .base import DenseBackbone


@MODELS.register_module()
class FCDenseNet(DenseBackbone):
    """FC-DenseNet downsampling path + bottleneck (mmseg backbone; works in 2D and 3D).

    Args:
        arch: ``'56' | '67' | '103'`` or a dict with ``first_channels``, ``growth`` and
            ``layers`` (``2 * n_pool + 1`` block lengths: down blocks, bottleneck, up blocks;
            the up-block lengths are read by the head).
        in_channels: input channels.
        drop_rate: dropout after every convolution (0.2 in the paper).
        spatial_dims: 2 (images) or 3 (volumes).
        norm_cfg / act_cfg: defaults BN (BN3d for volumes) / ReLU.
        out_indices: which of the ``n_pool + 1`` outputs to return (default all; the head
            needs all of them).
        frozen_stages: ``-1`` none, ``0`` the first conv, ``k`` the first conv and down levels ``< k``.
        norm_eval: keep the BN layers in eval mode during training.
        with_cp: checkpoint every dense layer (memory-efficient dense connectivity).

    Input sizes need not divide by ``2**n_pool``: max pooling floors and the head crops each
    upsampled map to its skip (the official code's centre crop), so the output has the input's
    size; inputs smaller than ``2**n_pool`` in any dimension are refused with a clear error.
    """

    # Block lengths: n_pool down blocks, the bottleneck, n_pool up blocks (paper, Table 2 / Sec. 4).
    arch_settings: Dict[str, dict] = {
        '56': dict(first_channels=48, growth=12, layers=(4, ) * 11),
        '67': dict(first_channels=48, growth=16, layers=(5, ) * 11),
        '103': dict(first_channels=48, growth=16, layers=(4, 5, 7, 10, 12, 15, 12, 10, 7, 5, 4)),
    }

    def __init__(self,
                 arch: Union[str, int, dict] = '103',
                 in_channels: int = 3,
                 drop_rate: float = 0.2,
                 spatial_dims: int = 2,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 out_indices: Optional[Sequence[int]] = None,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 pretrained: Optional[str] = None):
        super().__init__(arch=arch, out_indices=out_indices, frozen_stages=frozen_stages, norm_eval=norm_eval,
                         norm_cfg=norm_cfg, act_cfg=act_cfg, with_cp=with_cp, init_cfg=init_cfg, pretrained=pretrained)
        arch = self.arch
        layers = tuple(arch['layers'])
        if len(layers) % 2 != 1 or len(layers) < 3:
            raise BadConfigError(f'FCDenseNet: arch layers must have 2 * n_pool + 1 entries, got {layers}')
        self.n_pool = n_pool = len(layers) // 2
        growth = arch['growth']
        self.spatial_dims = spatial_dims
        kw = dict(drop_rate=drop_rate, spatial_dims=spatial_dims, norm_cfg=norm_cfg, act_cfg=act_cfg)

        self.stem = conv_type(spatial_dims)(in_channels, arch['first_channels'], kernel_size=3, padding=1)
        channels = arch['first_channels']
        self.down_blocks, self.transitions = nn.ModuleList(), nn.ModuleList()
        feature_info = []
        for i in range(n_pool):
            self.down_blocks.append(fc_dense_block(layers[i], channels, growth, 'all', with_cp=with_cp, **kw))
            channels += layers[i] * growth
            feature_info.append(dict(num_chs=channels, reduction=2**i, module=f'down_blocks.{i}'))
            self.transitions.append(DenseTransition(channels, channels, pool='max', bias=True, **kw))
        self.bottleneck = fc_dense_block(layers[n_pool], channels, growth, 'new', with_cp=with_cp, **kw)
        feature_info.append(dict(num_chs=layers[n_pool] * growth, reduction=2**n_pool, module='bottleneck'))
        #: block lengths of the upsampling path, for FCDenseNetHead
        self.up_layers = layers[n_pool + 1:]
        self._init_outputs(feature_info)

    def _resolve_arch(self, arch):
        arch = super()._resolve_arch(arch)
        missing = {'first_channels', 'growth', 'layers'} - set(arch)
        if missing:
            raise ConfigKeyError(f'FCDenseNet: custom arch is missing keys {sorted(missing)}')
        return arch

    def _frozen_modules(self):
        modules = [self.stem]
        for i in range(min(self.frozen_stages, self.n_pool)):
            modules += [self.down_blocks[i], self.transitions[i]]
        if self.frozen_stages > self.n_pool:
            modules.append(self.bottleneck)
        return modules

    def layer_group_id(self, param_name: str) -> int:
        # the transitions are registered after every down block but run between them
        if param_name.startswith('transitions.'):
            return int(param_name.split('.')[1]) + 2
        return super().layer_group_id(param_name)

    def _default_init(self):
        # Lasagne HeUniform(gain='relu') weights, zero biases, as the official code.
        kaiming_init_convs(self, uniform=True, zero_bias=True, nonlinearity='relu')

    def forward(self, x: torch.Tensor) -> tuple:
        spatial = x.shape[2:]
        if len(spatial) != self.spatial_dims:
            raise BadDataError(f'FCDenseNet(spatial_dims={self.spatial_dims}) got a {x.dim()}D input {tuple(x.shape)}')
        check_poolable('FCDenseNet', spatial, self.n_pool)
        x = self.stem(x)
        outs = []
        for block, down in zip(self.down_blocks, self.transitions):
            x = block(x)
            outs.append(x)
            x = down(x)
        outs.append(self.bottleneck(x))
        return tuple(outs[i] for i in self.out_indices)
