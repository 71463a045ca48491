"""FC-DenseNet (Tiramisu) upsampling path as an mmseg decode head."""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from densedet.errors import BadConfigError, BadDataError
from densedet.registry import MMSEG_MODELS

from ..layers import conv_transpose_type, fc_dense_block, kaiming_init_convs
from ..utils import check_in_channels
from .utils import MultiLevelHead, classifier_for_dims


def center_crop(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Crops the trailing spatial dims of ``x`` to ``size`` around the centre (Lasagne's 'center')."""
    pads = []
    for have, want in zip(x.shape[2:], size):
        if have < want:
            raise BadDataError(f'center_crop: map of size {tuple(x.shape[2:])} is smaller than {tuple(size)}')
        start = (have - want) // 2
        pads = [-start, -(have - want - start)] + pads  # F.pad order: last dim first
    # negative padding, not slicing: torch.export keeps the cropped size symbolic (free-size ONNX)
    return F.pad(x, pads)


@MMSEG_MODELS.register_module()
class FCDenseNetHead(MultiLevelHead):
    """The Tiramisu upsampling path on multi-scale features (finest first, deepest last).

    For ``k`` skips: the deepest input is upsampled by a 3x3 stride-2 transposed conv
    ("transition up", ``up_channels[i]`` maps), centre-cropped to the next skip's size and
    concatenated with it; a dense block of ``up_layers[i]`` BN-ReLU-3x3 conv layers follows.
    Only the **new** maps of each block are upsampled further; the last block returns its
    whole stack (its input and its new maps), which the 1x1 classifier reads.

    With :class:`~densedet.models.backbones.FCDenseNet` the deepest input is the bottleneck
    block's new maps and every default follows the paper. On another backbone's features
    (e.g. densedet's DenseNet, strides 4-32) the deepest level is upsampled as it is unless
    ``up_channels`` narrows the transposed convs; the logits come out at the finest skip's
    stride and mmseg resizes them to the labels.

    Args:
        in_channels: channels of the inputs, finest first (``in_index`` selects them).
        up_layers: dense-block lengths of the upsampling path, one per skip, coarse to fine
            (FC-DenseNet103: ``(12, 10, 7, 5, 4)``).
        growth: growth rate of the up blocks.
        up_channels: output maps of each transition up; default the number of maps it
            upsamples (the paper's ``n_filters_keep``).
        drop_rate: dropout after every convolution of the dense layers.
        spatial_dims: 2 or 3.
        with_cp: checkpoint every dense layer.
        **kwargs: :class:`BaseDecodeHead` arguments (``num_classes``, ``in_index``,
            ``loss_decode``, ...). ``channels`` is derived (the last stack's width) and
            ``input_transform`` is ``'multiple_select'``; ``dropout_ratio`` defaults to 0
            (the paper has no dropout before the classifier).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 up_layers: Sequence[int] = (12, 10, 7, 5, 4),
                 growth: int = 16,
                 up_channels: Optional[Sequence[int]] = None,
                 drop_rate: float = 0.2,
                 spatial_dims: int = 2,
                 with_cp: bool = False,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 **kwargs):
        in_channels = list(in_channels)
        num_skips = len(in_channels) - 1
        if num_skips < 1 or len(up_layers) != num_skips:
            raise BadConfigError(f'FCDenseNetHead: {len(in_channels)} inputs give {num_skips} skips, so '
                                 f'up_layers needs {num_skips} entries, got {tuple(up_layers)}')
        if up_channels is not None and len(up_channels) != num_skips:
            raise BadConfigError(f'FCDenseNetHead: up_channels needs {num_skips} entries, got {tuple(up_channels)}')
        skips = in_channels[:-1][::-1]  # coarse to fine
        to_upsample = in_channels[-1]
        plan = []
        for i, (skip, num_layers) in enumerate(zip(skips, up_layers)):
            kept = to_upsample if up_channels is None else up_channels[i]
            plan.append((to_upsample, kept, kept + skip, num_layers))
            to_upsample = num_layers * growth
        last_in, last_layers = plan[-1][2], plan[-1][3]
        super().__init__(in_channels, last_in + last_layers * growth, norm_cfg=norm_cfg,
                         act_cfg=act_cfg or dict(type='ReLU'), **kwargs)
        kw = dict(drop_rate=drop_rate, spatial_dims=spatial_dims, norm_cfg=norm_cfg, act_cfg=act_cfg,
                  with_cp=with_cp)
        self.spatial_dims = spatial_dims
        self.up_convs = nn.ModuleList(
            conv_transpose_type(spatial_dims)(c_in, kept, kernel_size=3, stride=2) for c_in, kept, _, _ in plan)
        self.up_blocks = nn.ModuleList(
            fc_dense_block(n, c, growth, 'all' if i == num_skips - 1 else 'new', **kw)
            for i, (_, _, c, n) in enumerate(plan))
        classifier_for_dims(self, spatial_dims)

    def init_weights(self):
        super().init_weights()
        for part in (self.up_convs, self.up_blocks):  # Lasagne HeUniform(gain='relu'), zero biases
            kaiming_init_convs(part, uniform=True, zero_bias=True, nonlinearity='relu')

    def _forward_feature(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        """The last block's stack (before the classifier)."""
        feats = self._transform_inputs(inputs)
        check_in_channels('FCDenseNetHead', feats, self.in_channels)
        skips, x = feats[:-1][::-1], feats[-1]
        for skip, up, block in zip(skips, self.up_convs, self.up_blocks):
            x = block(torch.cat([center_crop(up(x), skip.shape[2:]), skip], dim=1))
        return x

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        return self.cls_seg(self._forward_feature(inputs))
