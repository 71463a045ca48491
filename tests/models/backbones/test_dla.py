import pytest
import timm
import torch

from densedet.models.backbones import DLA

from helpers import (
    assert_matches_reference,
    assert_other_arch_rejected,
    assert_output_strides,
    assert_with_cp_matches_plain,
    randomize_batch_norms,
)

CHANNELS = {'34': (64, 128, 256, 512), '60': (128, 256, 512, 1024), '102': (128, 256, 512, 1024)}


def _timm(arch):
    torch.manual_seed(0)
    model = timm.create_model(f'dla{arch}', pretrained=False).eval()
    return randomize_batch_norms(model)


@pytest.mark.parametrize('arch', ['34', '60', '102'])
def test_parity_with_timm(arch, tmp_path):
    ref = _timm(arch)
    features = lambda x: ref.forward_intermediates(x, indices=[2, 3, 4, 5], intermediates_only=True)  # noqa: E731
    model = assert_matches_reference(DLA, arch, ref, features, 'fc.', tmp_path)
    assert model.out_channels == CHANNELS[arch] and model.out_strides == (4, 8, 16, 32)


@pytest.mark.parametrize('output_stride, strides', [(16, (4, 8, 16, 16)), (8, (4, 8, 8, 8))])
def test_output_stride(output_stride, strides):
    model = DLA(arch='34', output_stride=output_stride)
    assert_output_strides(model, strides)
    assert model.state_dict().keys() == DLA(arch='34').state_dict().keys()


def test_frozen_stages_and_norm_eval():
    model = DLA(arch='34', frozen_stages=1, norm_eval=True)
    model.train()
    for name, p in model.named_parameters():
        assert p.requires_grad != name.startswith(('base_layer.', 'level0.', 'level1.', 'level2.')), name
    assert all(not m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(arch='46'), KeyError, "unknown arch '46'"),
    (dict(out_indices=(0, 9)), ValueError, 'out of range'),
    (dict(frozen_stages=5), ValueError, 'frozen_stages must be in -1..4'),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        DLA(**kwargs)


def test_checkpoint_of_another_arch_fails_clearly(tmp_path):
    assert_other_arch_rejected(DLA, '34', '60', tmp_path)


def test_with_cp_same_outputs_and_gradients():
    assert_with_cp_matches_plain(DLA, arch='34')


def test_stem_output_prepends_level1_and_counts_in_frozen_stages():
    model = DLA(arch='34', stem_output=True, out_indices=None, frozen_stages=2)
    assert [(i['num_chs'], i['reduction']) for i in model.feature_info] == [(32, 2), (64, 4), (128, 8), (256, 16),
                                                                           (512, 32)]
    outs = model(torch.randn(1, 3, 65, 97))  # odd: the pooled residuals round up like the strided convs
    assert [tuple(o.shape[2:]) for o in outs] == [(33, 49), (17, 25), (9, 13), (5, 7), (3, 4)]
    frozen = {n.split('.')[0] for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {'base_layer', 'level0', 'level1', 'level2'}
