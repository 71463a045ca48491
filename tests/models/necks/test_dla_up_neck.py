"""DLAUpNeck: DLA-Up as a neck for dense-prediction detectors (one map at the finest stride)."""
import pytest
import torch

from densedet.errors import BadConfigError, BadDataError
from densedet.models.backbones import DLA
from densedet.models.necks import DLAUpNeck


def test_neck_aggregates_dla_levels_into_one_stride4_map_with_gradients():
    backbone = DLA(arch='34')
    neck = DLAUpNeck(in_channels=list(backbone.out_channels))
    neck.init_weights()
    outs = neck(backbone(torch.randn(2, 3, 95, 129)))  # odd sizes: levels round up, maps meet the finest
    assert len(outs) == 1 and outs[0].shape == (2, 64, 24, 33) and neck.out_channels == 64
    outs[0].mean().backward()
    assert all(p.grad is not None for p in neck.parameters())
    # the same aggregation (and state-dict layout) as the segmentation head's
    assert {k.split('.')[1] for k in neck.state_dict()} == {'ida_0', 'ida_1', 'ida_2'}


def test_neck_bad_inputs():
    neck = DLAUpNeck(in_channels=[64, 128, 256, 512])
    with pytest.raises(BadDataError, match=r'DLAUpNeck: inputs have \[64, 128, 256\] channels'):
        neck([torch.randn(1, c, 32 // 2**i, 32 // 2**i) for i, c in enumerate((64, 128, 256))])
    with pytest.raises(BadConfigError, match='DLAUpNeck: in_channels needs at least two levels'):
        DLAUpNeck(in_channels=[64])
