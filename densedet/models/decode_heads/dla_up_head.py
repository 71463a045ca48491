"""DLA-Up: iterative deep aggregation upsampling (IDA-Up) as an mmseg decode head.

"Deep Layer Aggregation", Yu et al., CVPR 2018, Sec. 3.3 / 4.3 (official ucbdrive/dla ``dla_up.py``:
``dla34up`` ... ``dla169up``). Module names follow the official ``dla_up.ida_{i}.{proj,up,node}_{k}``;
:func:`dlaup_official_to_mmseg` maps an official ``DLASeg`` checkpoint onto mmseg's ``EncoderDecoder`` with
the :class:`~densedet.models.backbones.DLA` backbone (``stem_output=True`` for stride 2) and this head.
"""
from typing import Dict, List, Optional, Sequence

import torch

from densedet.engine.checkpoint import strip_module_prefix
from densedet.errors import BadConfigError
from densedet.registry import MMSEG_MODELS

from ..necks.dla_up import DLAUp, check_level_sizes
from ..utils import check_in_channels
from .utils import MultiLevelHead


@MMSEG_MODELS.register_module()
class DLAUpHead(MultiLevelHead):
    """DLA-Up on DLA levels at strides ``s, 2s, ...`` (finest first); the 1x1 classifier reads the finest
    level's resolution (stride 2 with the official ``down_ratio=2``: DLA's level 1 via
    ``stem_output=True``; stride 4 without it) and mmseg resizes the logits to the image (the official
    network's last step is a fixed bilinear transposed conv by the same factor).

    Args:
        in_channels: widths of the levels, finest first; each level must have twice the stride of the
            previous one (DLA-34 from level 1: ``[32, 64, 128, 256, 512]``).
        node_kernel: kernel of the aggregation nodes (3, as the official).
        **kwargs: :class:`BaseDecodeHead` arguments (``num_classes``, ``loss_decode``, ...). ``channels`` is
            derived (the finest level's width), ``input_transform`` is ``'multiple_select'``; ``dropout_ratio``
            defaults to 0 (the official network has none).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 node_kernel: int = 3,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 **kwargs):
        in_channels = list(in_channels)
        if len(in_channels) < 2:
            raise BadConfigError(f'DLAUpHead: in_channels needs at least two levels, got {in_channels}')
        norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
        act_cfg = act_cfg or dict(type='ReLU', inplace=True)
        super().__init__(in_channels, in_channels[0], norm_cfg=norm_cfg,
                         act_cfg=act_cfg, **kwargs)
        self.dla_up = DLAUp(in_channels, node_kernel, norm_cfg, act_cfg)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        feats = self._transform_inputs(inputs)
        check_in_channels('DLAUpHead', feats, self.in_channels)
        check_level_sizes('DLAUpHead', feats)
        return self.cls_seg(self.dla_up(feats))


def dlaup_official_to_mmseg(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """An official ``DLASeg`` checkpoint (``dla34up`` ...) -> mmseg ``EncoderDecoder`` keys (DLA backbone with
    ``stem_output=True`` + :class:`DLAUpHead`). Dropped, as they take no part in segmentation: the base's
    ImageNet classifier ``base.fc``, the ``project`` convs of the official trees of depth > 1 (never
    called; timm and densedet do not build them) and the fixed bilinear ``up`` (mmseg's resize)."""
    state_dict = strip_module_prefix(state_dict)
    out = {}
    for key, value in state_dict.items():
        tree = key.split('.project.')[0]
        if key.startswith(('base.fc.', 'up.')) or ('.project.' in key and f'{tree}.root.conv.weight' not in state_dict):
            continue  # a tree with no root of its own has depth > 1: its project is never called
        if key.startswith('base.'):
            out['backbone.' + key[len('base.'):]] = value
        elif key.startswith('dla_up.'):
            out['decode_head.' + key] = value
        elif key.startswith('fc.0.'):
            out['decode_head.conv_seg.' + key[len('fc.0.'):]] = value
        else:
            raise BadConfigError(f'dlaup_official_to_mmseg: key {key!r} is not part of DLA-Up '
                                 '(expected base., dla_up., fc.0., up.)')
    return out
