"""UNet++: nested, densely connected skip pathways with deep supervision, as an mmseg decode head.

Zhou et al., "UNet++: A Nested U-Net Architecture for Medical Image Segmentation" (DLMIA 2018)
and "UNet++: Redesigning Skip Connections to Exploit Multiscale Features" (TMI 2020); official
Keras code MrGiovanni/UNetPlusPlus. With encoder levels X(i,0), i = 0..L (finest first), the
decoder nodes are

    X(i,j) = conv_block([X(i,0), ..., X(i,j-1), up(X(i+1,j-1))]),   j >= 1, i + j <= L

(dense connectivity along each skip pathway), ``up`` a 2x2 stride-2 transposed conv (or the
encoder's per-level ``strides``: kernel = stride). Each
X(0,j), j = 1..L, has a 1x1 classifier ("deep supervision head j"); head j only depends on
nodes with i + j' <= j, so the network pruned to depth j (UNet++ L_j) gives exactly head j.
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from densedet.errors import BadConfigError
from densedet.registry import MMSEG_MODELS

from ..layers import conv_block, conv_transpose_type, conv_type, norm_cfg_for_dims
from ..losses import deep_supervision_losses
from ..utils import check_in_channels, level_kernel_sizes, level_strides
from .utils import MultiLevelHead

MODES = ('accurate', 'fast')


def match_size(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Zero-pads (at the end) or crops ``x`` to ``like``'s spatial size.

    A stride-2 upsampling of a floor-pooled odd-sized map is one pixel short of its skip;
    padding that pixel keeps every input size usable without resizing the features.
    """
    if x.shape[2:] == like.shape[2:]:
        return x
    pad = []
    for have, want in zip(reversed(x.shape[2:]), reversed(like.shape[2:])):
        pad += [0, want - have]  # negative = crop
    return F.pad(x, pad)


@MMSEG_MODELS.register_module()
class UNetPlusPlusHead(MultiLevelHead):
    """UNet++ decoder on any backbone's multi-scale features (finest first).

    Args:
        in_channels: channels of the encoder levels X(0,0)..X(L,0) (``in_index`` selects them).
        node_channels: channels of the decoder nodes on each level (default ``in_channels``;
            the paper's 32/64/128/256/512 with its plain encoder).
        deep_supervision: train every head X(0,1)..X(0,L), each with its own loss weighted by
            ``loss_weights``; without it only head L is trained and used.
        loss_weights: one weight per head (default 1 each).
        mode: inference with ``'accurate'`` (the mean of all heads' logits) or ``'fast'``
            (head ``fast_head``, default L). Without deep supervision both use head L.
        prune_level: ``k`` in 1..L computes only the nodes with i + j <= k and returns head
            ``k`` (UNet++ L_k, the paper's inference-time pruning); the encoder levels above
            ``k`` are not read (see :func:`prune_unetpp` to stop computing them too).
        spatial_dims: 2, or 3 for volumes.
        strides: the encoder's pooling between levels (``UNetEncoder(strides=...)``): each ``up``
            from level i + 1 to i is a transposed conv with kernel = stride = ``strides[i]``.
        kernel_sizes: the encoder's conv kernel per level (``UNetEncoder(kernel_sizes=...)``), used by
            the nodes of that level.
        **kwargs: :class:`BaseDecodeHead` arguments (``num_classes``, ``loss_decode``, ...);
            ``channels`` is ``node_channels[0]``, ``input_transform`` is ``'multiple_select'``,
            ``dropout_ratio`` defaults to 0.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 node_channels: Optional[Sequence[int]] = None,
                 deep_supervision: bool = True,
                 loss_weights: Optional[Sequence[float]] = None,
                 mode: str = 'accurate',
                 fast_head: Optional[int] = None,
                 prune_level: Optional[int] = None,
                 spatial_dims: int = 2,
                 strides=None,
                 kernel_sizes=None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 **kwargs):
        in_channels = list(in_channels)
        depth = len(in_channels) - 1
        if depth < 1:
            raise BadConfigError(f'UNetPlusPlusHead needs at least two encoder levels, got in_channels={in_channels}')
        node_channels = list(in_channels if node_channels is None else node_channels)
        if len(node_channels) != len(in_channels):
            raise BadConfigError(f'UNetPlusPlusHead: node_channels needs {len(in_channels)} entries, '
                                 f'got {node_channels}')
        if mode not in MODES:
            raise BadConfigError(f'UNetPlusPlusHead: mode must be one of {MODES}, got {mode!r}')
        loss_weights = [1.0] * depth if loss_weights is None else list(loss_weights)
        if len(loss_weights) != depth:
            raise BadConfigError(f'UNetPlusPlusHead: loss_weights needs one weight per head ({depth}), '
                                 f'got {loss_weights}')
        kwargs.setdefault('init_cfg', dict(type='Normal', std=0.01, override=dict(name='seg_heads')))
        norm_cfg = norm_cfg_for_dims(norm_cfg, spatial_dims)
        act_cfg = act_cfg or dict(type='ReLU')
        super().__init__(in_channels, node_channels[0], norm_cfg=norm_cfg,
                         act_cfg=act_cfg, **kwargs)
        self.depth = depth
        self.node_channels = node_channels
        self.deep_supervision = deep_supervision
        self.loss_weights = loss_weights
        self.mode = mode
        self.fast_head = depth if fast_head is None else fast_head
        self.prune_level = prune_level
        self.spatial_dims = spatial_dims

        self.strides = level_strides('UNetPlusPlusHead', strides, depth, spatial_dims)
        kernel_sizes = level_kernel_sizes('UNetPlusPlusHead', kernel_sizes, depth + 1, spatial_dims)
        conv = conv_type(spatial_dims)
        # Encoder levels whose width differs from node_channels get a 1x1 projection.
        self.projections = nn.ModuleList(
            nn.Identity() if c == n else conv(c, n, kernel_size=1) for c, n in zip(in_channels, node_channels))
        self.ups = nn.ModuleDict()
        self.nodes = nn.ModuleDict()
        for j in range(1, depth + 1):
            for i in range(depth - j + 1):
                self.ups[f'{i}_{j}'] = conv_transpose_type(spatial_dims)(
                    node_channels[i + 1], node_channels[i], kernel_size=self.strides[i], stride=self.strides[i])
                self.nodes[f'{i}_{j}'] = conv_block((j + 1) * node_channels[i], node_channels[i],
                                                    spatial_dims=spatial_dims, norm_cfg=norm_cfg, act_cfg=act_cfg,
                                                    kernel_size=kernel_sizes[i])
        # One classifier per head X(0,j); conv_seg from BaseDecodeHead is unused.
        self.seg_heads = nn.ModuleList(
            conv(node_channels[0], self.out_channels, kernel_size=1) for _ in range(depth))
        del self.conv_seg

    def _check_level(self, level: Optional[int]) -> int:
        level = self.depth if level is None else level
        if not 1 <= level <= self.depth:
            raise BadConfigError(f'UNetPlusPlusHead: prune level / head must be in 1..{self.depth}, got {level}')
        return level

    def forward_nodes(self, inputs: List[torch.Tensor], level: Optional[int] = None) -> Dict[str, torch.Tensor]:
        """Every node X(i,j) with i + j <= ``level`` (default L), keyed ``'i_j'``."""
        level = self._check_level(level)
        feats = [inputs[i] for i in self.in_index[:level + 1]]  # a pruned encoder returns fewer levels
        check_in_channels('UNetPlusPlusHead', feats, list(self.in_channels)[:level + 1])
        nodes = {f'{i}_0': self.projections[i](feats[i]) for i in range(level + 1)}
        for j in range(1, level + 1):
            for i in range(level - j + 1):
                up = match_size(self.ups[f'{i}_{j}'](nodes[f'{i + 1}_{j - 1}']), nodes[f'{i}_0'])
                same_level = [nodes[f'{i}_{k}'] for k in range(j)]
                nodes[f'{i}_{j}'] = self.nodes[f'{i}_{j}'](torch.cat(same_level + [up], dim=1))
        return nodes

    def _head(self, nodes: Dict[str, torch.Tensor], j: int) -> torch.Tensor:
        x = nodes[f'0_{j}']
        if self.dropout is not None:
            x = self.dropout(x)
        return self.seg_heads[j - 1](x)

    def forward_heads(self, inputs: List[torch.Tensor]) -> List[torch.Tensor]:
        """Logits of every deep-supervision head, X(0,1)..X(0,L)."""
        nodes = self.forward_nodes(inputs)
        return [self._head(nodes, j) for j in range(1, self.depth + 1)]

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        """Inference logits: pruned L_k, or 'fast' (one head), or 'accurate' (mean of the heads)."""
        if self.prune_level is not None:
            level = self._check_level(self.prune_level)
            return self._head(self.forward_nodes(inputs, level), level)
        if not self.deep_supervision:
            return self._head(self.forward_nodes(inputs), self.depth)
        if self.mode == 'fast':
            head = self._check_level(self.fast_head)
            return self._head(self.forward_nodes(inputs, head), head)
        return torch.stack(self.forward_heads(inputs)).mean(0)

    def loss(self, inputs, batch_data_samples, train_cfg) -> dict:
        if not self.deep_supervision:
            return self.loss_by_feat(self._head(self.forward_nodes(inputs), self.depth), batch_data_samples)
        return deep_supervision_losses(self.forward_heads(inputs), self.loss_weights,
                                       lambda logits: self.loss_by_feat(logits, batch_data_samples))


def prune_unetpp(segmentor: nn.Module, level: Optional[int]) -> nn.Module:
    """Prunes a UNet++ segmentor to depth ``level`` for inference (``None`` restores it).

    Sets ``decode_head.prune_level`` and, for a backbone with ``active_levels`` (the
    plain :class:`~densedet.models.backbones.UNetEncoder`), stops the encoder after level
    ``level`` too: the whole UNet++ L_k of the paper.
    """
    head = segmentor.decode_head
    head.prune_level = None if level is None else head._check_level(level)
    backbone = segmentor.backbone
    if hasattr(backbone, 'active_levels'):
        backbone.active_levels = len(backbone.feature_info) if level is None else level + 1
    return segmentor
