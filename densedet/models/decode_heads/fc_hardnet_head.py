"""FC-HarDNet's upsampling path as an mmseg decode head.

"HarDNet: A Low Memory Traffic Network", Chao et al., ICCV 2019; the segmentation network of the
official PingoLH/FCHarDNet (FC-HarDNet-70). Module names follow the official ``conv1x1_up`` /
``denseBlocksUp`` lists (in snake case); :func:`fchardnet_official_to_mmseg` maps the official
checkpoint onto an mmseg ``EncoderDecoder`` with the :class:`~densedet.models.backbones.HarDNet`
``'fc70'`` backbone and this head.
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from densedet.engine.checkpoint import strip_module_prefix
from densedet.errors import BadConfigError
from densedet.registry import MMSEG_MODELS

from ..layers import ConvLayer, HarDBlock
from ..utils import check_in_channels
from .utils import MultiLevelHead


@MMSEG_MODELS.register_module()
class FCHarDNetHead(MultiLevelHead):
    """FC-HarDNet's decoder on ``k + 1`` encoder levels (finest first, the bottom last).

    From the bottom up, for each skip (coarse to fine): bilinear upsampling to the skip's size
    (``align_corners=True``, as the official code), concatenation with the skip, a 1x1
    conv-BN-ReLU that halves the channels, and a harmonic dense block; a 1x1 classifier reads the
    last block. With HarDNet ``'fc70'`` the defaults are FC-HarDNet-70's.

    Args:
        in_channels: channels of the inputs, finest first (``'fc70'``: 48, 78, 160, 214, 320).
        growth: growth rate of each up block, *fine to coarse* like the encoder's
            (FC-HarDNet-70: ``(10, 16, 18, 24)``, its encoder's first four).
        num_layers: layers of each up block, fine to coarse (``(4, 4, 8, 8)``).
        grmul: the harmonic blocks' width multiplier per extra link.
        with_cp: checkpoint every harmonic layer (recomputed in backward).
        **kwargs: :class:`BaseDecodeHead` arguments (``num_classes``, ``loss_decode``, ...).
            ``channels`` is derived (the last block's width), ``input_transform`` is
            ``'multiple_select'``; ``dropout_ratio`` defaults to 0 (the official network has none).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 growth: Sequence[int] = (10, 16, 18, 24),
                 num_layers: Sequence[int] = (4, 4, 8, 8),
                 grmul: float = 1.7,
                 with_cp: bool = False,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 **kwargs):
        in_channels = list(in_channels)
        num_skips = len(in_channels) - 1
        if num_skips < 1 or len(growth) != num_skips or len(num_layers) != num_skips:
            raise BadConfigError(f'FCHarDNetHead: {len(in_channels)} inputs give {num_skips} skips, so growth and '
                                 f'num_layers need {num_skips} entries each, got {tuple(growth)} / '
                                 f'{tuple(num_layers)}')
        norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
        act_cfg = act_cfg or dict(type='ReLU', inplace=True)
        layer_cfg = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        conv1x1_up, blocks = [], []
        width = in_channels[-1]
        for level in reversed(range(num_skips)):
            concat = width + in_channels[level]
            conv1x1_up.append(ConvLayer(concat, concat // 2, 1, **layer_cfg))
            block = HarDBlock(concat // 2, growth[level], grmul, num_layers[level], with_cp=with_cp, **layer_cfg)
            blocks.append(block)
            width = block.out_channels
        super().__init__(in_channels, width, norm_cfg=norm_cfg,
                         act_cfg=act_cfg, **kwargs)
        self.conv1x1_up = nn.ModuleList(conv1x1_up)
        self.dense_blocks_up = nn.ModuleList(blocks)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        feats = self._transform_inputs(inputs)
        check_in_channels('FCHarDNetHead', feats, self.in_channels)
        x = feats[-1]
        for skip, conv, block in zip(feats[-2::-1], self.conv1x1_up, self.dense_blocks_up):
            x = F.interpolate(x, size=skip.shape[2:], mode='bilinear', align_corners=True)
            x = block(conv(torch.cat([x, skip], 1)))
        return self.cls_seg(x)


_OFFICIAL_PREFIXES = (('base.', 'backbone.base.'), ('conv1x1_up.', 'decode_head.conv1x1_up.'),
                      ('denseBlocksUp.', 'decode_head.dense_blocks_up.'), ('finalConv.', 'decode_head.conv_seg.'))


def fchardnet_official_to_mmseg(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """An official FC-HarDNet checkpoint (``hardnet70_cityscapes_model.pkl``'s ``model_state``, with or
    without DataParallel's ``module.``) -> the keys of mmseg's ``EncoderDecoder`` with the
    ``'fc70'`` backbone and :class:`FCHarDNetHead`. A key of no known part is an error."""
    out = {}
    for key, value in strip_module_prefix(state_dict).items():
        for official, ours in _OFFICIAL_PREFIXES:
            if key.startswith(official):
                out[ours + key[len(official):]] = value
                break
        else:
            raise BadConfigError(f'fchardnet_official_to_mmseg: key {key!r} is not part of FC-HarDNet '
                                 f'(expected {", ".join(p for p, _ in _OFFICIAL_PREFIXES)}...)')
    return out
