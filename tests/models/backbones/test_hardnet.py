import pytest
import torch
from official_layouts import conv_bn, harmonic_block, random_state

from densedet.models.backbones import HarDNet

from helpers import assert_other_arch_rejected, assert_output_strides, assert_with_cp_matches_plain

# Paper / official README: parameters with the 1000-class classifier.
PAPER_PARAMS_M = {'68': 17.6, '85': 36.7}
CHANNELS = {'39': (96, 320, 640, 1024), '68': (128, 320, 640, 1024), '85': (192, 320, 720, 1280)}


def _with_classifier(model):
    """The official state dict: the backbone plus ``base.{N}`` = (pool, flatten, dropout, Linear)."""
    state = dict(model.state_dict())
    n, c = len(model.base), model.feature_info[-1]['num_chs']
    state[f'base.{n}.3.weight'] = torch.randn(1000, c)
    state[f'base.{n}.3.bias'] = torch.zeros(1000)
    return state


@pytest.mark.parametrize('arch', ['68', '85'])
def test_parameter_counts_match_the_paper(arch):
    model = HarDNet(arch=arch)
    total = sum(v.numel() for k, v in _with_classifier(model).items() if 'running' not in k and 'num_batches' not in k)
    assert round(total / 1e6, 1) == PAPER_PARAMS_M[arch]


@pytest.mark.parametrize('arch', ['39', '68', '85'])
def test_output_shapes(arch):
    model = HarDNet(arch=arch).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert tuple(o.shape[1] for o in outs) == CHANNELS[arch] == model.out_channels
    assert [64 // o.shape[-1] for o in outs] == [4, 8, 16, 32] == list(model.out_strides)


def test_official_layout_and_harmonic_widths():
    """Key names and shapes of the official HarDNet68, computed by hand from the paper's rule."""
    shapes = {k: tuple(v.shape) for k, v in HarDNet(arch='68').state_dict().items()}
    assert shapes['base.0.conv.weight'] == (32, 3, 3, 3)
    assert shapes['base.1.conv.weight'] == (64, 32, 3, 3)
    assert shapes['base.3.layers.0.conv.weight'] == (14, 64, 3, 3)  # k=1: reads the block input
    assert shapes['base.3.layers.1.conv.weight'] == (24, 78, 3, 3)  # k=2: reads 1 and 0, 14*1.7 -> 24
    assert shapes['base.3.layers.3.conv.weight'] == (40, 14 + 24 + 64, 3, 3)  # k=4: reads 3, 2, 0
    assert shapes['base.4.conv.weight'] == (128, 14 + 14 + 14 + 14 + 68, 1, 1)  # odd layers + last


# The official models (PingoLH/Pytorch-HarDNet, hardnet.py), written out here independently of
# densedet's implementation: stem, growth, layers per block, transition widths, max-pool after block.
OFFICIAL = {
    '68': dict(stem=(32, 64), growth=(14, 16, 20, 40, 160), layers=(8, 16, 16, 16, 4),
               widths=(128, 256, 320, 640, 1024), pool=(1, 0, 1, 1, 0), dropout_before_last=False),
    '85': dict(stem=(48, 96), growth=(24, 24, 28, 36, 48, 256), layers=(8, 16, 16, 16, 16, 4),
               widths=(192, 256, 320, 480, 720, 1280), pool=(1, 0, 1, 0, 1, 0), dropout_before_last=True),
}


def _official_state_dict(arch):
    """Every key and shape of the official (non-depthwise) HarDNet ``arch``, random values."""
    spec, shapes = OFFICIAL[arch], {}
    conv_bn(shapes, 'base.0', 3, spec['stem'][0], 3)
    conv_bn(shapes, 'base.1', spec['stem'][0], spec['stem'][1], 3)
    index, ch = 3, spec['stem'][1]  # base.2: max pooling
    for b, (growth, n) in enumerate(zip(spec['growth'], spec['layers'])):
        out_ch = harmonic_block(shapes, f'base.{index}', ch, growth, n)
        index += 1
        if b == len(spec['growth']) - 1 and spec['dropout_before_last']:
            index += 1
        conv_bn(shapes, f'base.{index}', out_ch, spec['widths'][b], 1)
        index += 1 + spec['pool'][b]
        ch = spec['widths'][b]
    shapes[f'base.{index}.3.weight'], shapes[f'base.{index}.3.bias'] = (1000, ch), (1000, )  # the classifier
    return random_state(shapes)


@pytest.mark.parametrize('arch', ['68', '85'])
def test_official_checkpoint_loads_and_drops_classifier(arch, tmp_path):
    official = _official_state_dict(arch)
    path = tmp_path / f'hardnet{arch}.pth'
    torch.save(official, path)
    model = HarDNet(arch=arch, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    ours = model.state_dict()
    classifier = {k for k in official if k.endswith(('.3.weight', '.3.bias')) and k.count('.') == 3}
    assert len(classifier) == 2 and set(ours) == set(official) - classifier
    for key, value in ours.items():  # every tensor came from the file, none kept its init
        torch.testing.assert_close(value, official[key], msg=key)


def test_depthwise_variant_builds_official_ds_layout():
    shapes = {k: tuple(v.shape) for k, v in HarDNet(arch='39', depthwise=True).state_dict().items()}
    assert shapes['base.1.conv.weight'] == (48, 24, 1, 1)
    assert shapes['base.2.dwconv.weight'] == (48, 1, 3, 3)  # strided depthwise instead of max pooling
    assert shapes['base.3.layers.0.layer1.conv.weight'] == (16, 48, 1, 1)
    assert shapes['base.3.layers.0.layer2.dwconv.weight'] == (16, 1, 3, 3)


def test_with_cp_frozen_and_norm_eval():
    assert_with_cp_matches_plain(HarDNet, arch='39')
    model = HarDNet(arch='68', frozen_stages=1, norm_eval=True)
    model.train()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, _ in model.named_parameters() if int(n.split('.')[1]) <= 4}
    assert all(not m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(arch='100'), KeyError, "unknown arch '100'"),
    (dict(out_indices=(4, )), ValueError, 'out of range'),
    (dict(frozen_stages=5), ValueError, 'frozen_stages must be in -1..4'),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        HarDNet(**kwargs)


def test_checkpoint_of_another_arch_fails_clearly(tmp_path):
    assert_other_arch_rejected(HarDNet, '85', '68', tmp_path)


@pytest.mark.parametrize('depthwise', [False, True])
@pytest.mark.parametrize('output_stride, strides', [(16, (4, 8, 16, 16)), (8, (4, 8, 8, 8))])
def test_output_stride(output_stride, strides, depthwise):
    model = HarDNet(arch='39', depthwise=depthwise, output_stride=output_stride)
    assert_output_strides(model, strides)
    assert model.state_dict().keys() == HarDNet(arch='39', depthwise=depthwise).state_dict().keys()
