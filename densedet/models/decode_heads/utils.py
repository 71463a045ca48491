"""What densedet's decode heads share on top of mmseg's ``BaseDecodeHead``."""
import torch.nn as nn

from ..layers import conv_type


def classifier_for_dims(head: nn.Module, spatial_dims: int) -> None:
    """``BaseDecodeHead`` builds a 2D classifier (``conv_seg``, 1x1 conv over ``channels``) and a
    ``Dropout2d``; a head with ``spatial_dims=3`` gets the same two in 3D, under the same names
    (checkpoints and mmseg's ``init_cfg`` override on ``conv_seg`` keep working)."""
    if spatial_dims == 2:
        return
    head.conv_seg = conv_type(spatial_dims)(head.channels, head.out_channels, kernel_size=1)
    if head.dropout is not None:
        head.dropout = nn.Dropout(head.dropout.p)  # element-wise, as the 3D reference networks
