"""FC-DenseNet (Tiramisu): the FCDenseNet encoder + FCDenseNetHead against the paper's definition."""
import pytest
import torch
from mmengine.registry import MODELS, init_default_scope

from densedet.models.backbones import FCDenseNet
from densedet.models.decode_heads import FCDenseNetHead

PAPER = {  # first conv, growth, block lengths (down..., bottleneck, up...); paper Sec. 4 / Table 2
    '56': (48, 12, [4] * 11),
    '67': (48, 16, [5] * 11),
    '103': (48, 16, [4, 5, 7, 10, 12, 15, 12, 10, 7, 5, 4]),
}


def paper_param_count(first, growth, layers, num_classes=11):
    """Trainable parameters of the official network, from its definition (convs with bias, BN gamma/beta)."""
    n_pool = len(layers) // 2

    def dense_layer(c):  # BN(c) - ReLU - 3x3 conv c -> growth (+bias)
        return 2 * c + 9 * c * growth + growth

    total, c, skips = 9 * 3 * first + first, first, []
    for i in range(n_pool):
        for _ in range(layers[i]):
            total, c = total + dense_layer(c), c + growth
        skips.append(c)
        total += 2 * c + c * c + c  # transition down: BN - ReLU - 1x1 conv c -> c
    new = growth * layers[n_pool]
    for _ in range(layers[n_pool]):
        total, c = total + dense_layer(c), c + growth
    for i in range(n_pool):
        total += 9 * new * new + new  # transition up: 3x3 transposed conv on the new maps only
        c = new + skips[-1 - i]
        for _ in range(layers[n_pool + 1 + i]):
            total, c = total + dense_layer(c), c + growth
        new = growth * layers[n_pool + 1 + i]
    return total + c * num_classes + num_classes


def _build(arch, drop_rate=0.2, num_classes=11):
    backbone = FCDenseNet(arch, drop_rate=drop_rate)
    head = FCDenseNetHead(in_channels=[f['num_chs'] for f in backbone.feature_info], up_layers=backbone.up_layers,
                          growth=backbone.arch['growth'], drop_rate=drop_rate, num_classes=num_classes)
    return backbone, head


@pytest.mark.parametrize('arch,paper_millions', [('56', 1.5), ('67', 3.5), ('103', 9.4)])
def test_parameter_counts_match_the_paper_definition(arch, paper_millions):
    backbone, head = _build(arch)
    ours = sum(p.numel() for p in backbone.parameters()) + sum(p.numel() for p in head.parameters())
    assert ours == paper_param_count(*PAPER[arch])  # exactly the definition (the issue asks for 1%)
    if arch != '56':  # the paper's 1.5M for FC-DenseNet56 is not what its definition gives (1.38M)
        assert abs(ours / 1e6 - paper_millions) / paper_millions < 0.02


def test_channel_counts_at_every_block_of_fcdensenet103():
    backbone, head = _build('103', drop_rate=0.0)
    seen = {}

    def hook(name):
        return lambda m, args, out: seen.__setitem__(name, (args[0].shape[1], out.shape[1], tuple(out.shape[2:])))

    for i, block in enumerate(backbone.down_blocks):
        block.register_forward_hook(hook(f'down{i}'))
    backbone.bottleneck.register_forward_hook(hook('bottleneck'))
    for i, (up, block) in enumerate(zip(head.up_convs, head.up_blocks)):
        up.register_forward_hook(hook(f'up{i}'))
        block.register_forward_hook(hook(f'block{i}'))
    x = torch.randn(1, 3, 64, 96)
    logits = head(backbone(x))
    # down path: 48 + 4*16 = 112, +5*16 = 192, +7*16 = 304, +10*16 = 464, +12*16 = 656 (the skips)
    assert [seen[f'down{i}'][:2] for i in range(5)] == [(48, 112), (112, 192), (192, 304), (304, 464), (464, 656)]
    assert seen['bottleneck'][:2] == (656, 240)  # only the 15 * 16 new maps leave the bottleneck
    # transition up keeps exactly the maps it upsamples: 240, then 12/10/7/5 layers x 16
    assert [seen[f'up{i}'][:2] for i in range(5)] == [(240, 240), (192, 192), (160, 160), (112, 112), (80, 80)]
    # each up block reads upsampled + skip (the concatenation that broken ports drop) ...
    assert [seen[f'block{i}'][0] for i in range(5)] == [240 + 656, 192 + 464, 160 + 304, 112 + 192, 80 + 112]
    # ... returns only its new maps, except the last, whose whole stack feeds the classifier
    assert [seen[f'block{i}'][1] for i in range(5)] == [192, 160, 112, 80, 192 + 4 * 16]
    assert head.channels == 256 and logits.shape == (1, 11, 64, 96)


def test_gradients_reach_every_layer():
    torch.manual_seed(0)
    backbone, head = _build('56', drop_rate=0.0, num_classes=3)
    head(backbone(torch.randn(2, 3, 32, 32))).square().mean().backward()
    missing = [n for n, p in list(backbone.named_parameters()) + list(head.named_parameters())
               if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize('size', [(37, 53), (360, 480)])
def test_any_input_size_keeps_its_size(size):
    """Sizes that do not divide by 2**5 work: pooling floors and the head crops (official behaviour)."""
    backbone, head = _build('56', drop_rate=0.0)
    backbone.eval(), head.eval()
    with torch.no_grad():
        assert head(backbone(torch.randn(1, 3, *size))).shape[2:] == size


def test_too_small_input_is_a_clear_error():
    backbone, _ = _build('56')
    with pytest.raises(ValueError, match=r'input size \(20, 40\) is smaller than 2\*\*n_pool = 32'):
        backbone(torch.randn(1, 3, 20, 40))


def test_three_dimensional_tiramisu():
    arch = dict(first_channels=8, growth=4, layers=(2, 2, 2, 2, 2))
    backbone = FCDenseNet(arch, in_channels=1, spatial_dims=3, drop_rate=0.0)
    head = FCDenseNetHead(in_channels=backbone.out_channels, up_layers=backbone.up_layers, growth=4,
                          spatial_dims=3, drop_rate=0.0, num_classes=3)
    out = head(backbone(torch.randn(1, 1, 12, 16, 20)))
    assert out.shape == (1, 3, 12, 16, 20)
    assert isinstance(head.conv_seg, torch.nn.Conv3d)


def test_wrong_in_channels_is_a_clear_error():
    backbone, _ = _build('56')
    head = FCDenseNetHead(in_channels=[112, 160, 208, 256, 304, 48], up_layers=[4] * 5, growth=12, num_classes=11)
    with pytest.raises(ValueError, match=r'inputs have \[96, 144, 192, 240, 288, 48\] channels'):
        head(backbone.eval()(torch.randn(1, 3, 32, 32)))


def test_bad_arguments():
    with pytest.raises(KeyError, match='unknown arch'):
        FCDenseNet('100')
    with pytest.raises(ValueError, match='up_layers needs 5 entries'):
        FCDenseNetHead(in_channels=[112, 192, 304, 464, 656, 240], up_layers=(4, 4), num_classes=11)


def test_registered_for_mmseg_encoder_decoder():
    from test_configs import seg_samples
    init_default_scope('mmseg')
    model = MODELS.build(dict(
        type='EncoderDecoder', data_preprocessor=dict(type='SegDataPreProcessor'),
        backbone=dict(type='FCDenseNet', arch='56'),
        decode_head=dict(type='FCDenseNetHead', in_channels=[96, 144, 192, 240, 288, 48], up_layers=[4] * 5,
                         growth=12, num_classes=11)))
    losses = model.loss(torch.randn(2, 3, 32, 32), seg_samples(2, (32, 32), 11))
    assert torch.isfinite(losses['decode.loss_ce'])


def test_default_init_is_lasagne_he_uniform_with_zero_biases():
    torch.manual_seed(0)
    backbone, head = _build('56')
    backbone.init_weights()
    head.init_weights()
    for module in (backbone, head.up_convs, head.up_blocks):
        convs = [m for m in module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
        assert convs and all(m.bias.abs().sum() == 0 for m in convs)
        for m in convs:  # He-uniform bound sqrt(6 / fan_in) (transposed convs: fan_in from dim 1)
            fan_in = m.weight[0].numel() if isinstance(m, torch.nn.Conv2d) else m.weight[:, 0].numel()
            assert m.weight.abs().max() <= (6 / fan_in) ** 0.5 + 1e-6
