import pytest
import timm
import torch
from safetensors.torch import save_file

from densedet.models.backbones import RDNet

from helpers import assert_output_strides, assert_with_cp_matches_plain

ARCH_CHANNELS = {
    'tiny': (256, 440, 744, 1040),
    'small': (264, 512, 760, 1264),
    'base': (408, 584, 1000, 1760),
    'large': (528, 840, 1528, 2000),
}
# timm's classification models (backbone + NormMlpClassifierHead), from its model cards.
TIMM_PARAMS_M = {'tiny': 23.86, 'small': 50.44, 'base': 87.45, 'large': 186.27}


def _timm(arch):
    torch.manual_seed(0)
    model = timm.create_model(f'rdnet_{arch}', pretrained=False).eval()
    with torch.no_grad():  # non-trivial layer scales so every block matters in the comparison
        for name, p in model.named_parameters():
            if name.endswith('gamma'):
                p.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize('arch', ['tiny', 'small', 'base', 'large'])
def test_parity_with_timm(arch, tmp_path):
    ref = _timm(arch)
    path = tmp_path / f'rdnet_{arch}.pth'
    torch.save(ref.state_dict(), path)
    model = RDNet(arch=arch, init_cfg=dict(type='Pretrained', checkpoint=str(path))).eval()
    model.init_weights()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours = model(x)
        theirs = ref.forward_intermediates(x, intermediates_only=True)
    assert len(ours) == len(theirs) == 4
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # Same network: backbone params == timm's minus its classifier head.
    head = sum(p.numel() for n, p in ref.named_parameters() if n.startswith('head.'))
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters()) - head
    assert round(sum(p.numel() for p in ref.parameters()) / 1e6, 2) == TIMM_PARAMS_M[arch]


@pytest.mark.parametrize('arch', list(ARCH_CHANNELS))
def test_channels_and_strides(arch):
    model = RDNet(arch=arch)
    assert model.out_channels == ARCH_CHANNELS[arch]
    assert model.out_strides == (4, 8, 16, 32)
    assert [f['num_chs'] for f in model.feature_info] == list(ARCH_CHANNELS[arch])


def test_outputs_shapes_and_out_indices():
    model = RDNet(arch='tiny', out_indices=(1, 3)).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 96, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 440, 12, 8), (2, 1040, 3, 2)]
    assert model.out_channels == (440, 1040)


def test_safetensors_and_naver_layouts_load(tmp_path):
    ref = _timm('tiny')
    x = torch.randn(1, 3, 32, 32)
    expected = ref.forward_intermediates(x, intermediates_only=True)
    st = tmp_path / 'model.safetensors'
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(st))
    naver = tmp_path / 'naver.pth'  # original NAVER layout: stem wrapped, under 'model'
    torch.save({'model': {k.replace('stem.', 'stem.stem.', 1) if k.startswith('stem.') else k: v
                          for k, v in ref.state_dict().items()}}, naver)
    for path in (st, naver):
        model = RDNet(arch='tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path))).eval()
        model.init_weights()
        with torch.no_grad():
            torch.testing.assert_close(model(x)[3], expected[3], atol=1e-5, rtol=1e-5)


def test_prefix_selects_backbone_of_a_segmentor_checkpoint(tmp_path):
    src = RDNet(arch='tiny')
    path = tmp_path / 'seg.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in src.state_dict().items()} |
                {'decode_head.conv_seg.weight': torch.zeros(1)}}, path)
    model = RDNet(arch='tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    model.init_weights()
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_missing_and_unexpected_keys_are_reported(tmp_path):
    state = RDNet(arch='tiny').state_dict()
    state.pop('stem.0.bias')
    state['extra.weight'] = torch.zeros(1)
    path = tmp_path / 'partial.pth'
    torch.save(state, path)
    from densedet.models.utils import load_pretrained_weights
    missing, unexpected = load_pretrained_weights(RDNet(arch='tiny'), str(path))
    assert missing == ['stem.0.bias'] and unexpected == ['extra.weight']


def test_checkpoint_of_another_arch_fails_clearly(tmp_path):
    path = tmp_path / 'small.pth'
    torch.save(RDNet(arch='small').state_dict(), path)
    model = RDNet(arch='tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match=r"small.pth does not fit RDNet \(arch 'tiny'\).*another arch"):
        model.init_weights()


def test_missing_checkpoint_file_names_it():
    model = RDNet(arch='tiny', init_cfg=dict(type='Pretrained', checkpoint='/nonexistent/rdnet.pth'))
    with pytest.raises(FileNotFoundError, match='/nonexistent/rdnet.pth'):
        model.init_weights()


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(arch='huge'), KeyError, "unknown arch 'huge'"),
    (dict(out_indices=(0, 4)), ValueError, r'out_indices \[4\] out of range'),
    (dict(frozen_stages=5), ValueError, 'frozen_stages must be in -1..4'),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        RDNet(**kwargs)


def test_frozen_stages_stay_frozen_in_train_mode():
    model = RDNet(arch='tiny', frozen_stages=2)
    model.train()
    # levels 0 and 1 end at dense stages 0 and 1
    for name, p in model.named_parameters():
        frozen = name.startswith(('stem.', 'dense_stages.0.', 'dense_stages.1.'))
        assert p.requires_grad != frozen, name
    assert not model.stem.training and not model.dense_stages[1].training
    assert model.dense_stages[2].training


def test_with_cp_same_outputs_and_gradients():
    assert_with_cp_matches_plain(RDNet, arch='tiny')


def test_gradients_reach_the_stem():
    model = RDNet(arch='tiny', out_indices=(3, ))
    model(torch.randn(1, 3, 64, 64))[0].sum().backward()
    assert model.stem[0].weight.grad.abs().sum() > 0


def test_drop_path_rates_rise_stagewise():
    model = RDNet(arch='tiny', drop_path_rate=0.3)
    last = model.dense_stages[-1][-1].dense_block2.drop_path
    first = model.dense_stages[0][0].dense_block0.drop_path
    assert isinstance(first, torch.nn.Identity)
    assert last.drop_prob == pytest.approx(0.3)


@pytest.mark.parametrize('out_norm_cfg', [None, dict(type='GN', num_groups=1)])
def test_outputs_are_nchw_contiguous(out_norm_cfg):
    # LayerNorm2d works channels-last; the shared helper also checks the outputs are dense NCHW.
    assert_output_strides(RDNet(arch='tiny', out_norm_cfg=out_norm_cfg), (4, 8, 16, 32))


def test_out_norm_applies_group_norm():
    model = RDNet(arch='tiny', out_norm_cfg=dict(type='GN', num_groups=1)).eval()
    outs = model(torch.randn(1, 3, 64, 64))
    for o in outs:
        torch.testing.assert_close(o.mean(), torch.tensor(0.), atol=1e-4, rtol=0)
