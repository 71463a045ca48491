import pytest
import torch
import torchvision

from densedet.errors import BadConfigError
from densedet.models.backbones import DenseNet

from helpers import assert_output_strides, assert_with_cp_matches_plain, randomize_batch_norms

CHANNELS = {'121': (256, 512, 1024, 1024), '169': (256, 512, 1280, 1664), '201': (256, 512, 1792, 1920),
            '161': (384, 768, 2112, 2208)}


def _torchvision(arch):
    torch.manual_seed(0)
    return randomize_batch_norms(getattr(torchvision.models, f'densenet{arch}')(weights=None).eval())


def _torchvision_features(model, x):
    """The dense block outputs and relu(norm5(.)), straight from torchvision's modules."""
    outs = []
    for name, module in model.features.named_children():
        x = module(x)
        if name.startswith('denseblock') and name != 'denseblock4':
            outs.append(x)
    outs.append(torch.relu(x))
    return outs


@pytest.mark.parametrize('arch', ['121', '169', '201', '161'])
def test_parity_with_torchvision(arch, tmp_path):
    ref = _torchvision(arch)
    path = tmp_path / f'densenet{arch}.pth'
    torch.save(ref.state_dict(), path)
    model = DenseNet(arch=arch, init_cfg=dict(type='Pretrained', checkpoint=str(path))).eval()
    model.init_weights()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours, theirs = model(x), _torchvision_features(ref, x)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert tuple(o.shape[1] for o in ours) == CHANNELS[arch] == model.out_channels
    assert model.out_strides == (4, 8, 16, 32)


def test_old_style_torchvision_keys_load(tmp_path):
    ref = _torchvision('121')
    old = {}
    for k, v in ref.state_dict().items():  # 'denselayer1.norm1.weight' -> 'denselayer1.norm.1.weight'
        for part in ('norm1', 'norm2', 'relu1', 'relu2', 'conv1', 'conv2'):
            if f'.{part}.' in k and 'denselayer' in k:
                k = k.replace(f'.{part}.', f'.{part[:-1]}.{part[-1]}.')
        old[k] = v
    assert any('.norm.1.' in k for k in old)
    path = tmp_path / 'densenet121-old.pth'
    torch.save(old, path)
    model = DenseNet(arch=121, init_cfg=dict(type='Pretrained', checkpoint=str(path))).eval()
    model.init_weights()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[3], _torchvision_features(ref, x)[3], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('output_stride, strides', [(16, (4, 8, 16, 16)), (8, (4, 8, 8, 8))])
def test_output_stride_dilates_instead_of_pooling(output_stride, strides):
    model = DenseNet(arch='121', output_stride=output_stride)
    assert_output_strides(model, strides)
    dilated = model.features.denseblock4.denselayer1.conv2
    assert dilated.dilation == ((2, 2) if output_stride == 16 else (4, 4))
    # same parameters as the undilated network: torchvision weights still load
    assert model.state_dict().keys() == DenseNet(arch='121').state_dict().keys()


def test_with_cp_same_outputs_and_gradients():
    assert_with_cp_matches_plain(DenseNet, arch='121')


def test_frozen_stages_and_norm_eval():
    model = DenseNet(arch='121', frozen_stages=2, norm_eval=True)
    model.train()
    for name, p in model.named_parameters():
        frozen = name.startswith(('features.conv0', 'features.norm0', 'features.denseblock1.',
                                  'features.transition1.', 'features.denseblock2.'))
        assert p.requires_grad != frozen, name
    assert all(not m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(arch='122'), KeyError, "unknown arch '122'"),
    (dict(out_indices=(5, )), ValueError, r'out_indices \[5\] out of range'),
    (dict(frozen_stages=-2), ValueError, 'frozen_stages must be in -1..4'),
    (dict(output_stride=4), ValueError, 'output_stride must be 8, 16, 32 or 64'),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        DenseNet(**kwargs)


def test_checkpoint_of_another_arch_fails_clearly(tmp_path):
    path = tmp_path / 'densenet169.pth'
    torch.save(_torchvision('169').state_dict(), path)
    model = DenseNet(arch='121', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match=r"densenet169.pth does not fit DenseNet \(arch '121'\)"):
        model.init_weights()


def test_stem_output_is_the_stride_two_activation():
    model = DenseNet(arch='121', stem_output=True, out_indices=(0, 1, 2, 3, 4)).eval()
    ref = DenseNet(arch='121').eval()
    ref.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        outs, ref_outs = model(x), ref(x)
        f = model.features
        stem = f.relu0(f.norm0(f.conv0(x)))
    assert model.out_channels == (64, 256, 512, 1024, 1024) and model.out_strides == (2, 4, 8, 16, 32)
    assert torch.equal(outs[0], stem) and all(torch.equal(a, b) for a, b in zip(outs[1:], ref_outs, strict=True))
    frozen = DenseNet(arch='121', stem_output=True, frozen_stages=2)  # the stem level, then dense level 0
    assert not frozen.features.denseblock1.denselayer1.conv1.weight.requires_grad
    assert frozen.features.transition1.conv.weight.requires_grad


def test_3d_densenet_keeps_depth_with_anisotropic_transitions():
    model = DenseNet(arch=dict(growth_rate=8, block_config=(2, 2, 2, 2), stem_channels=16), in_channels=2,
                     spatial_dims=3, transition_pool_size=(1, 2, 2), out_indices=(0, 1, 2, 3)).eval()
    assert isinstance(model.features.conv0, torch.nn.Conv3d)
    assert isinstance(model.features.denseblock2.denselayer1.norm1, torch.nn.BatchNorm3d)
    with torch.no_grad():
        outs = model(torch.randn(1, 2, 8, 64, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(32, 2, 16, 16), (32, 2, 8, 8), (32, 2, 4, 4), (32, 2, 2, 2)]
    outs = model.train()(torch.randn(2, 2, 8, 32, 32))
    outs[-1].mean().backward()
    assert model.features.conv0.weight.grad.abs().sum() > 0


def test_3d_densenet_anisotropic_stem_and_full_resolution_input_skip():
    tiny = dict(growth_rate=8, block_config=(2, 2, 2, 2), stem_channels=16)
    model = DenseNet(arch=tiny, in_channels=1, spatial_dims=3, transition_pool_size=(1, 2, 2), stem_output=True,
                     stem_stride=(1, 2, 2), input_skip=dict(out_channels=8, kernel_size=(1, 3, 3)),
                     out_indices=(0, 1, 2, 3, 4, 5)).eval()
    plain = DenseNet(arch=tiny, in_channels=1, spatial_dims=3, transition_pool_size=(1, 2, 2), stem_output=True,
                     out_indices=(0, 1, 2, 3, 4))
    # the options add the input skip's weights only; the stem conv keeps its shape
    assert set(model.state_dict()) - set(plain.state_dict()) == {k for k in model.state_dict()
                                                                 if k.startswith('input_skip.')}
    x = torch.randn(1, 1, 8, 32, 32)
    with torch.no_grad():
        outs = model(x)
        skip = model.input_skip(x)
    assert torch.equal(outs[0], skip) and model.input_skip[0].conv.kernel_size == (1, 3, 3)
    # the stem keeps the 8 slices, its pooling halves them; in-plane strides are the usual 1, 2, 4, ..., 32
    assert [tuple(o.shape[1:]) for o in outs] == [(8, 8, 32, 32), (16, 8, 16, 16), (32, 4, 8, 8), (32, 4, 4, 4),
                                                  (32, 4, 2, 2), (32, 4, 1, 1)]
    assert model.out_strides == (1, 2, 4, 8, 16, 32) and model.out_channels[:2] == (8, 16)
    # the input skip freezes with the stem; frozen_stages counts it as a level like the stem's output
    frozen = DenseNet(arch=tiny, in_channels=1, spatial_dims=3, stem_output=True, input_skip=dict(out_channels=8),
                      out_indices=(0, 1, 2, 3, 4, 5), frozen_stages=3)
    assert not frozen.input_skip[0].conv.weight.requires_grad and not frozen.features.conv0.weight.requires_grad
    assert not frozen.features.denseblock1.denselayer1.conv1.weight.requires_grad
    assert frozen.features.transition1.conv.weight.requires_grad
    with pytest.raises(BadConfigError, match='DenseNet'):
        DenseNet(arch=tiny, spatial_dims=3, stem_stride=(1, 2))
    with pytest.raises(BadConfigError, match=r"DenseNet: input_skip takes out_channels \(required\), num_convs and "
                                             r"kernel_size, got \{'channels': 8\}"):
        DenseNet(arch=tiny, spatial_dims=3, input_skip=dict(channels=8))


def _conv_macs(model, size=224):
    total = []
    hooks = [m.register_forward_hook(lambda m, i, o: total.append(o.numel() * m.weight[0].numel()))
             for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, size, size))
    for h in hooks:
        h.remove()
    return sum(total)


@pytest.mark.parametrize('arch, params, channels', [('121', (6_953_856, 5_486_123), (144, 246, 476, 434)),
                                                    ('201', (18_092_928, 14_681_083), (144, 246, 860, 834))])
def test_csp_densenet_is_the_same_stages_with_partial_dense_blocks(arch, params, channels):
    plain, csp = DenseNet(arch=arch), DenseNet(arch='csp' + arch)
    assert (sum(p.numel() for p in plain.parameters()), sum(p.numel() for p in csp.parameters())) == params
    assert csp.out_channels == channels and csp.out_strides == plain.out_strides
    # half of each stage's input through the dense layers: the first layer of block 1 reads 32 of 64 stem channels
    assert csp.features.denseblock1.block.denselayer1.norm1.num_features == 32
    assert _conv_macs(csp) < 0.9 * _conv_macs(plain)  # CSPNet: "about 20 % less computation"
    assert DenseNet(arch=arch, csp_ratio=0.5).state_dict().keys() == csp.state_dict().keys()


def test_csp_densenet_odd_sizes_with_cp_and_bad_ratio():
    assert_with_cp_matches_plain(DenseNet, arch='csp121')
    model = DenseNet(arch='csp121', out_indices=(0, 1, 2, 3)).train()
    outs = model(torch.randn(1, 3, 67, 45))
    sum(o.sum() for o in outs).backward()
    assert [o.shape[1] for o in outs] == list(model.out_channels)
    with pytest.raises(BadConfigError, match=r'DenseNet: csp_ratio must be in \(0, 1\).*got 1.0'):
        DenseNet(arch='121', csp_ratio=1.0)
