"""The plain conv block of U-Net-style encoders and decoder nodes, for 2D and 3D."""
from typing import Optional, Sequence, Union

import torch.nn as nn
from mmcv.cnn import ConvModule

from densedet.errors import BadConfigError

from ..utils import odd_kernel_size
from .utils import norm_cfg_for_dims


def conv_block(in_channels: int, out_channels: int, num_convs: int = 2, spatial_dims: int = 2,
               norm_cfg: Optional[dict] = None, act_cfg: Optional[dict] = None,
               kernel_size: Union[int, Sequence[int]] = 3) -> nn.Sequential:
    """``num_convs`` x (3x3 conv - norm - activation), as U-Net / UNet++'s "standard unit".

    ``norm_cfg`` defaults to BN (BN3d for ``spatial_dims=3``), ``act_cfg`` to ReLU; ``kernel_size``
    (odd, an int or one per axis, "same" padding) as nnU-Net plans it, e.g. ``(1, 3, 3)`` at full
    resolution of an anisotropic volume.
    """
    if spatial_dims not in (2, 3):
        raise BadConfigError(f'conv_block: spatial_dims must be 2 or 3, got {spatial_dims!r}')
    kernel = odd_kernel_size('conv_block', kernel_size, spatial_dims)
    conv_cfg = dict(type=f'Conv{spatial_dims}d')
    norm_cfg = norm_cfg_for_dims(norm_cfg, spatial_dims)
    act_cfg = act_cfg or dict(type='ReLU')
    return nn.Sequential(*[
        ConvModule(in_channels if i == 0 else out_channels, out_channels, kernel, padding=tuple(k // 2 for k in kernel),
                   conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg) for i in range(num_convs)
    ])

