"""The plain convolutional encoder of U-Net / UNet++ (Zhou et al. 2018, filters 32-512)."""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn

from densedet.registry import MODELS

from ..layers import conv_block, max_pool_type
from ..utils import check_poolable, level_kernel_sizes, level_strides, total_stride
from .base import DenseBackbone


@MODELS.register_module()
class UNetEncoder(DenseBackbone):
    """Encoder X(0,0)..X(L,0) of UNet++: per level a block of two 3x3 conv-BN-ReLU, 2x2 max
    pooling between levels (or the per-level ``strides``). Outputs every level, finest first
    (strides 1, 2, ..., 2**L by default).

    Not a dense network itself; it is the paper's encoder for
    :class:`~densedet.models.decode_heads.UNetPlusPlusHead`, whose nested skip pathways are
    the dense part. It subclasses :class:`DenseBackbone` for the backbone contract only
    (``out_indices``, ``frozen_stages``, ``norm_eval``, ``feature_info``, ``init_cfg``, lr-decay
    groups), which UNet++ configs use like any other backbone's. (The official Keras code uses
    ReLU + dropout without BN; BN here, set ``norm_cfg`` to change it.)

    Args:
        in_channels: input channels.
        channels: filters per level (paper: 32, 64, 128, 256, 512).
        spatial_dims: 2 or 3.
        strides: pooling between levels: ``None`` (2), an int, or one int / per-axis tuple per
            pooling (``len(channels) - 1``), e.g. nnU-Net's planned ``[(1, 2, 2), (2, 2, 2), ...]``
            for anisotropic volumes; the head takes the same ``strides``.
        kernel_sizes: conv kernel per level (default 3), an int or per-axis tuple each, e.g. the
            plan's ``(1, 3, 3)`` at full resolution; the head takes the same ``kernel_sizes``.
        active_levels: how many levels ``forward`` computes (default all). A UNet++ pruned
            to depth ``k`` needs only ``k + 1`` (see ``prune_unetpp``).
    """

    def __init__(self,
                 in_channels: int = 3,
                 channels: Sequence[int] = (32, 64, 128, 256, 512),
                 spatial_dims: int = 2,
                 strides=None,
                 kernel_sizes=None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 out_indices: Optional[Sequence[int]] = None,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 pretrained: Optional[str] = None):
        super().__init__(out_indices=out_indices, frozen_stages=frozen_stages, norm_eval=norm_eval, norm_cfg=norm_cfg,
                         act_cfg=act_cfg, init_cfg=init_cfg, pretrained=pretrained)
        self.spatial_dims = spatial_dims
        self.levels = nn.ModuleList()
        prev = in_channels
        kernel_sizes = level_kernel_sizes('UNetEncoder', kernel_sizes, len(channels), spatial_dims)
        for c, k in zip(channels, kernel_sizes):
            self.levels.append(conv_block(prev, c, spatial_dims=spatial_dims, norm_cfg=norm_cfg, act_cfg=act_cfg,
                                          kernel_size=k))
            prev = c
        self.strides = level_strides('UNetEncoder', strides, len(channels) - 1, spatial_dims)
        # parameter-free, so a ModuleList keeps the state dict of the fixed 2x2 pooling
        self.pools = nn.ModuleList(max_pool_type(spatial_dims)(kernel_size=s, stride=s) for s in self.strides)
        self.active_levels = len(channels)
        reductions = [max(total_stride(self.strides[:i], spatial_dims)) for i in range(len(channels))]
        feature_info = [dict(num_chs=c, reduction=r, module=f'levels.{i}')
                        for i, (c, r) in enumerate(zip(channels, reductions))]
        self._init_outputs(feature_info)

    def _frozen_modules(self):
        return list(self.levels[:max(self.frozen_stages, 1)])

    def forward(self, x: torch.Tensor) -> tuple:
        check_poolable('UNetEncoder', x.shape[2:], self.active_levels - 1, self.strides)
        outs = []
        for i in range(self.active_levels):
            x = self.levels[i](x if i == 0 else self.pools[i - 1](x))
            outs.append(x)
        return tuple(outs[i] for i in self.out_indices if i < self.active_levels)
