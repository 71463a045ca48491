"""What densedet's decode heads share on top of mmseg's ``BaseDecodeHead``."""
from typing import Optional, Sequence

import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead

from ..layers import conv_type


class MultiLevelHead(BaseDecodeHead):
    """A decoder over several encoder levels (finest first) that derives its own classifier width.

    ``channels`` (the width the 1x1 classifier reads) is computed by the subclass, not configured (a
    config's ``channels`` is ignored); ``input_transform`` is ``'multiple_select'`` over every input
    unless ``in_index`` selects; ``dropout_ratio`` defaults to 0 (none of the reference decoders has
    dropout before the classifier).
    """

    def __init__(self, in_channels: Sequence[int], derived_channels: int, in_index: Optional[Sequence[int]] = None,
                 dropout_ratio: float = 0.0, **kwargs):
        kwargs.pop('channels', None)
        in_channels = list(in_channels)
        super().__init__(in_channels=in_channels, channels=derived_channels,
                         in_index=list(range(len(in_channels))) if in_index is None else list(in_index),
                         input_transform='multiple_select', dropout_ratio=dropout_ratio, **kwargs)


def classifier_for_dims(head: nn.Module, spatial_dims: int) -> None:
    """``BaseDecodeHead`` builds a 2D classifier (``conv_seg``, 1x1 conv over ``channels``) and a
    ``Dropout2d``; a head with ``spatial_dims=3`` gets the same two in 3D, under the same names
    (checkpoints and mmseg's ``init_cfg`` override on ``conv_seg`` keep working)."""
    if spatial_dims == 2:
        return
    head.conv_seg = conv_type(spatial_dims)(head.channels, head.out_channels, kernel_size=1)
    if head.dropout is not None:
        head.dropout = nn.Dropout(head.dropout.p)  # element-wise, as the 3D reference networks
