"""The plain conv block of U-Net-style encoders and decoder nodes, for 2D and 3D."""
from typing import Optional

import torch.nn as nn
from mmcv.cnn import ConvModule

from densedet.errors import BadConfigError

from .utils import norm_cfg_for_dims


def conv_block(in_channels: int, out_channels: int, num_convs: int = 2, spatial_dims: int = 2,
               norm_cfg: Optional[dict] = None, act_cfg: Optional[dict] = None) -> nn.Sequential:
    """``num_convs`` x (3x3 conv - norm - activation), as U-Net / UNet++'s "standard unit".

    ``norm_cfg`` defaults to BN (BN3d for ``spatial_dims=3``), ``act_cfg`` to ReLU.
    """
    if spatial_dims not in (2, 3):
        raise BadConfigError(f'conv_block: spatial_dims must be 2 or 3, got {spatial_dims!r}')
    conv_cfg = dict(type=f'Conv{spatial_dims}d')
    norm_cfg = norm_cfg_for_dims(norm_cfg, spatial_dims)
    act_cfg = act_cfg or dict(type='ReLU')
    return nn.Sequential(*[
        ConvModule(in_channels if i == 0 else out_channels, out_channels, 3, padding=1, conv_cfg=conv_cfg,
                   norm_cfg=norm_cfg, act_cfg=act_cfg) for i in range(num_convs)
    ])
