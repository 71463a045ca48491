"""Small helpers that let one block definition serve 2D and 3D (MONAI's ``spatial_dims`` idea)."""
from typing import Optional

import torch.nn as nn

from densedet.errors import BadConfigError

# images and volumes; norms come from mmcv's registry through norm_cfg_for_dims
_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_MAXPOOL = {2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVGPOOL = {2: nn.AvgPool2d, 3: nn.AvgPool3d}


def _pick(table, spatial_dims, what):
    if spatial_dims not in table:
        raise BadConfigError(f'spatial_dims must be one of {sorted(table)} for {what}, got {spatial_dims!r}')
    return table[spatial_dims]


def conv_type(spatial_dims: int):
    return _pick(_CONV, spatial_dims, 'convolution')


def conv_transpose_type(spatial_dims: int):
    return _pick(_CONV_T, spatial_dims, 'transposed convolution')


def max_pool_type(spatial_dims: int):
    return _pick(_MAXPOOL, spatial_dims, 'max pooling')


def avg_pool_type(spatial_dims: int):
    return _pick(_AVGPOOL, spatial_dims, 'average pooling')


def round_down_to_multiple(value: float, divisor: int) -> int:
    """``int(value / divisor) * divisor``: the channel rounding RDNet uses (never rounds up)."""
    return int(value / divisor) * divisor


def norm_cfg_for_dims(norm_cfg: Optional[dict], spatial_dims: int) -> dict:
    """The norm config of a ``spatial_dims`` block: batch norm of that dimensionality when
    ``norm_cfg`` is None, and mmcv's 2D batch-norm names (``BN``/``BN2d``) turned into their
    ``spatial_dims`` version, so one default serves images and volumes (``SyncBN`` and other
    types stay as they are)."""
    bn = 'BN' if spatial_dims == 2 else f'BN{spatial_dims}d'
    if norm_cfg is None:
        return dict(type=bn)
    if norm_cfg.get('type') in ('BN', 'BN2d'):
        return dict(norm_cfg, type=bn)
    return dict(norm_cfg)
