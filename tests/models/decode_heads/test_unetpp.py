"""UNet++ head: nested dense skips, deep supervision, accurate/fast modes, pruning, 2D and 3D."""
import pytest
import torch
from mmengine.registry import MODELS, init_default_scope

from densedet.models.decode_heads import UNetPlusPlusHead, prune_unetpp

CHANNELS = [8, 16, 32, 64, 128]


def _segmentor(**head):
    init_default_scope('mmseg')
    model = MODELS.build(dict(
        type='EncoderDecoder', data_preprocessor=dict(type='SegDataPreProcessor'),
        backbone=dict(type='UNetEncoder', in_channels=3, channels=CHANNELS),
        decode_head=dict(type='UNetPlusPlusHead', in_channels=CHANNELS, num_classes=3, **head)))
    model.init_weights()
    return model.eval()


def test_nodes_are_densely_connected():
    head = UNetPlusPlusHead(in_channels=CHANNELS, num_classes=2)
    assert sorted(head.nodes) == sorted(f'{i}_{j}' for j in range(1, 5) for i in range(5 - j))  # 10 nodes
    for key, node in head.nodes.items():
        i, j = map(int, key.split('_'))
        # X(i,0..j-1) plus the upsampled X(i+1,j-1): (j + 1) * c_i input channels
        assert node[0].conv.in_channels == (j + 1) * CHANNELS[i]
    assert len(head.seg_heads) == 4


@pytest.mark.parametrize('level', [1, 2, 3, 4])
def test_pruned_network_equals_its_deep_supervision_head(level):
    torch.manual_seed(0)
    model = _segmentor()
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        heads = model.decode_head.forward_heads(model.backbone(x))
        prune_unetpp(model, level)
        assert len(model.backbone(x)) == level + 1  # the encoder stops at level k too
        pruned = model._forward(x)
        prune_unetpp(model, None)
        assert len(model.backbone(x)) == 5
    torch.testing.assert_close(pruned, heads[level - 1], rtol=0, atol=0)


def test_accurate_mode_is_the_mean_of_the_heads_and_fast_mode_is_head_l():
    torch.manual_seed(0)
    model = _segmentor()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        feats = model.backbone(x)
        heads = model.decode_head.forward_heads(feats)
        torch.testing.assert_close(model.decode_head(feats), torch.stack(heads).mean(0))
        model.decode_head.mode = 'fast'
        torch.testing.assert_close(model.decode_head(feats), heads[-1])
        model.decode_head.fast_head = 2
        torch.testing.assert_close(model.decode_head(feats), heads[1])


def test_deep_supervision_losses_are_weighted_per_head():
    from test_configs import seg_samples
    torch.manual_seed(0)
    samples = seg_samples(2, (32, 32), 3)
    x = torch.randn(2, 3, 32, 32)
    model = _segmentor(loss_weights=[1.0, 1.0, 1.0, 1.0]).train()
    state = model.state_dict()
    plain = model.loss(x, samples)
    assert sorted(k for k in plain if 'loss' in k) == [f'decode.head{j}.loss_ce' for j in range(1, 5)]
    weighted = _segmentor(loss_weights=[0.0, 0.5, 1.0, 2.0]).train()
    weighted.load_state_dict(state)
    out = weighted.loss(x, samples)
    for j, w in zip(range(1, 5), [0.0, 0.5, 1.0, 2.0]):
        torch.testing.assert_close(out[f'decode.head{j}.loss_ce'], w * plain[f'decode.head{j}.loss_ce'])
    single = _segmentor(deep_supervision=False).train()
    assert [k for k in single.loss(x, samples) if 'loss' in k] == ['decode.loss_ce']


def test_gradients_reach_every_node_and_encoder_level():
    from test_configs import seg_samples
    model = _segmentor().train()
    losses = model.loss(torch.randn(2, 3, 32, 32), seg_samples(2, (32, 32), 3))
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize('size', [(37, 45), (33, 65)])
def test_odd_sizes_keep_their_size(size):
    model = _segmentor()
    with torch.no_grad():
        assert model._forward(torch.randn(1, 3, *size)).shape == (1, 3, *size)


def test_on_dense_and_resnet_backbones():
    from test_configs import seg_samples
    init_default_scope('mmseg')
    for backbone, channels in [(dict(type='DenseNet', arch='121'), [256, 512, 1024, 1024]),
                               (dict(type='ResNetV1c', depth=18), [64, 128, 256, 512])]:
        model = MODELS.build(dict(
            type='EncoderDecoder', data_preprocessor=dict(type='SegDataPreProcessor'), backbone=backbone,
            decode_head=dict(type='UNetPlusPlusHead', in_channels=channels, node_channels=[32, 64, 128, 256],
                             num_classes=4)))
        losses = model.loss(torch.randn(2, 3, 64, 64), seg_samples(2, (64, 64), 4))
        assert sorted(k for k in losses if 'loss' in k) == [f'decode.head{j}.loss_ce' for j in range(1, 4)]
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        assert model.decode_head.projections[3].weight.grad.abs().sum() > 0


def test_three_dimensional():
    head = UNetPlusPlusHead(in_channels=[4, 8, 16], num_classes=2, spatial_dims=3)
    feats = [torch.randn(1, 4, 8, 12, 10), torch.randn(1, 8, 4, 6, 5), torch.randn(1, 16, 2, 3, 2)]
    head.eval()
    assert head(feats).shape == (1, 2, 8, 12, 10)
    assert isinstance(head.seg_heads[0], torch.nn.Conv3d)


def test_planned_anisotropic_strides():
    """nnU-Net's plan for anisotropic volumes pools in-plane first and convolves in-plane at full
    resolution: encoder and head follow the strides and kernels, the output has the input's size,
    and the defaults keep the 2x2 transposed convs."""
    from densedet.models.backbones import UNetEncoder
    strides, kernels = [(1, 2, 2), (2, 2, 2)], [(1, 3, 3), 3, 3]
    encoder = UNetEncoder(in_channels=1, channels=(4, 8, 16), spatial_dims=3, strides=strides, kernel_sizes=kernels)
    head = UNetPlusPlusHead(in_channels=[4, 8, 16], num_classes=2, spatial_dims=3, strides=strides,
                            kernel_sizes=kernels).eval()
    # the full-resolution level convolves in-plane only (nnU-Net's kernel for anisotropic spacing)
    assert encoder.levels[0][0].conv.kernel_size == head.nodes['0_2'][1].conv.kernel_size == (1, 3, 3)
    assert encoder.levels[0][0].conv.padding == (0, 1, 1) and head.nodes['1_1'][0].conv.kernel_size == (3, 3, 3)
    feats = encoder(torch.randn(1, 1, 4, 12, 8))
    assert [tuple(f.shape[2:]) for f in feats] == [(4, 12, 8), (4, 6, 4), (2, 3, 2)]
    assert [i['reduction'] for i in encoder.feature_info] == [1, 2, 4]
    assert head(feats).shape == (1, 2, 4, 12, 8)
    assert head.ups['0_1'].kernel_size == (1, 2, 2) and head.ups['1_1'].stride == (2, 2, 2)
    assert UNetPlusPlusHead(in_channels=[4, 8, 16], num_classes=2, spatial_dims=3).ups['0_1'].kernel_size == (2, 2, 2)
    with pytest.raises(ValueError, match=r'total stride \(2, 4, 4\)'):
        encoder(torch.randn(1, 1, 1, 12, 8))
    with pytest.raises(ValueError, match='one entry per pooling'):
        UNetEncoder(channels=(4, 8, 16), spatial_dims=3, strides=[(1, 2, 2)])
    with pytest.raises(ValueError, match='kernel_sizes needs one entry per level'):
        UNetEncoder(channels=(4, 8), spatial_dims=3, kernel_sizes=[3])
    with pytest.raises(ValueError, match='3 odd sizes'):
        UNetEncoder(channels=(4, 8), spatial_dims=3, kernel_sizes=[(2, 3, 3), 3])
    with pytest.raises(ValueError, match='3 positive entries'):
        UNetPlusPlusHead(in_channels=[4, 8], num_classes=2, spatial_dims=3, strides=[(2, 2)])


def test_bad_arguments():
    with pytest.raises(ValueError, match='mode'):
        UNetPlusPlusHead(in_channels=CHANNELS, num_classes=2, mode='best')
    with pytest.raises(ValueError, match='loss_weights'):
        UNetPlusPlusHead(in_channels=CHANNELS, num_classes=2, loss_weights=[1, 1])
    head = UNetPlusPlusHead(in_channels=CHANNELS, num_classes=2, prune_level=5)
    with pytest.raises(ValueError, match=r'1\.\.4'):
        head([torch.randn(1, c, 32 // 2**i, 32 // 2**i) for i, c in enumerate(CHANNELS)])
