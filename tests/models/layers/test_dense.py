import pytest
import torch
import torch.nn as nn

from densedet.errors import BadConfigError
from densedet.models.layers import (
    CrossStagePartial,
    DenseBlock,
    DenseLayer,
    EffectiveSE,
    LayerNorm2d,
    conv_type,
    make_dense_layers,
)


def _bn_relu_conv(spatial_dims, growth):
    def build(i, in_ch):
        return nn.Sequential(nn.BatchNorm2d(in_ch) if spatial_dims == 2 else nn.BatchNorm3d(in_ch), nn.ReLU(),
                             conv_type(spatial_dims)(in_ch, growth, 3, padding=1))
    return build


@pytest.mark.parametrize('spatial_dims', [2, 3])
def test_dense_block_channel_growth(spatial_dims):
    layers = make_dense_layers(4, 8, 5, _bn_relu_conv(spatial_dims, 5))
    block = DenseBlock(layers)
    x = torch.randn(2, 8, *([6] * spatial_dims))
    out = block(x)
    assert out.shape[1] == 8 + 4 * 5
    assert torch.equal(out[:, :8], x)  # the input is passed through unchanged
    new = DenseBlock(make_dense_layers(4, 8, 5, _bn_relu_conv(spatial_dims, 5)), output='new')(x)
    assert new.shape[1] == 4 * 5


def test_each_layer_sees_all_previous_features():
    seen = []

    class Probe(nn.Module):
        def __init__(self, i, in_ch):
            super().__init__()
            self.conv = nn.Conv2d(in_ch, 3, 1)

        def forward(self, x):
            seen.append(x.shape[1])
            return self.conv(x)

    DenseBlock(make_dense_layers(3, 4, 3, Probe))(torch.randn(1, 4, 5, 5))
    assert seen == [4, 7, 10]


def test_layer_names_follow_format():
    block = DenseBlock(make_dense_layers(2, 4, 2, _bn_relu_conv(2, 2)), layer_name='denselayer{}', first_index=1)
    assert [n for n, _ in block.named_children()] == ['denselayer1', 'denselayer2']


def test_checkpointing_matches_plain_forward_and_backward():
    torch.manual_seed(0)
    plain = DenseBlock(make_dense_layers(3, 4, 4, _bn_relu_conv(2, 4))).eval()
    ckpt = DenseBlock(make_dense_layers(3, 4, 4, _bn_relu_conv(2, 4)), with_cp=True).eval()
    ckpt.load_state_dict(plain.state_dict())
    x1 = torch.randn(2, 4, 8, 8, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    out1, out2 = plain(x1), ckpt(x2)
    torch.testing.assert_close(out1, out2)
    out1.square().sum().backward()
    out2.square().sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    for p1, p2 in zip(plain.parameters(), ckpt.parameters()):
        torch.testing.assert_close(p1.grad, p2.grad)


def test_bad_output_mode():
    with pytest.raises(ValueError, match='output'):
        DenseBlock([], output='sum')


def test_layernorm2d_matches_layernorm_over_channels():
    norm = LayerNorm2d(6)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    x = torch.randn(2, 6, 4, 5)
    ref = nn.functional.layer_norm(x.permute(0, 2, 3, 1), (6, ), norm.weight, norm.bias, 1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(norm(x), ref)


@pytest.mark.parametrize('spatial_dims', [2, 3])
def test_effective_se_gates_channels(spatial_dims):
    se = EffectiveSE(4, spatial_dims=spatial_dims)
    x = torch.randn(2, 4, *([3] * spatial_dims))
    gate = torch.nn.functional.hardsigmoid(se.fc(x.mean(tuple(range(2, x.ndim)), keepdim=True)))
    torch.testing.assert_close(se(x), x * gate)


def test_bad_spatial_dims():
    with pytest.raises(ValueError, match='spatial_dims'):
        conv_type(4)


def test_chain_connectivity_is_one_shot_aggregation():
    seen = []

    class Probe(nn.Module):
        def __init__(self, i, in_ch):
            super().__init__()
            self.conv = nn.Conv2d(4 if i == 0 else 3, 3, 1)

        def forward(self, x):
            seen.append(x.shape[1])
            return self.conv(x)

    out = DenseBlock(make_dense_layers(3, 4, 3, Probe), connectivity='chain')(torch.randn(1, 4, 5, 5))
    assert seen == [4, 3, 3]  # each layer sees only the previous output
    assert out.shape[1] == 4 + 3 * 3  # all outputs are aggregated once


def test_norm_cfg_for_dims():
    from densedet.models.layers import norm_cfg_for_dims
    assert norm_cfg_for_dims(None, 2) == dict(type='BN') and norm_cfg_for_dims(None, 3) == dict(type='BN3d')
    assert norm_cfg_for_dims(dict(type='BN', requires_grad=True), 3) == dict(type='BN3d', requires_grad=True)
    assert norm_cfg_for_dims(dict(type='BN'), 2) == dict(type='BN')
    assert norm_cfg_for_dims(dict(type='GN', num_groups=4), 3) == dict(type='GN', num_groups=4)
    from densedet.models.layers import DenseLayer
    layer = DenseLayer(8, 4, spatial_dims=3, norm_cfg=dict(type='BN'))  # a 2D name given to a 3D layer
    assert isinstance(layer.norm1, torch.nn.BatchNorm3d)


@pytest.mark.parametrize('spatial_dims', [2, 3])
def test_cross_stage_partial_passes_part_and_transitions_the_rest(spatial_dims):
    growth = 4

    def build(channels):
        layers = make_dense_layers(3, channels, growth, lambda i, c: DenseLayer(c, growth, spatial_dims=spatial_dims))
        return DenseBlock(layers), channels + 3 * growth

    stage = CrossStagePartial(20, 0.5, build, spatial_dims=spatial_dims).eval()
    assert (stage.passed, stage.partial, stage.out_channels) == (10, 10, 10 + (10 + 12) // 2)
    x = torch.randn(2, 20, *(5, ) * spatial_dims)
    out = stage(x)
    assert out.shape[1] == stage.out_channels
    torch.testing.assert_close(out[:, :10], x[:, :10])  # the passed part is untouched
    torch.testing.assert_close(out[:, 10:], stage.partial_transition(stage.block(x[:, 10:])))
    # the block only ever sees the partial channels
    assert stage.block.layer0.norm1.num_features == 10


@pytest.mark.parametrize('ratio', [0, 1, 1.5, -0.2, '0.5'])
def test_cross_stage_partial_bad_ratio(ratio):
    with pytest.raises(BadConfigError, match=r'csp_ratio must be in \(0, 1\)'):
        CrossStagePartial(16, ratio, lambda c: (torch.nn.Identity(), c))
