import pytest
import torch
from timm.models.vovnet import VovNet, model_cfgs

from densedet.models.backbones import VoVNet

from helpers import (
    assert_matches_reference,
    assert_other_arch_rejected,
    assert_output_strides,
    assert_with_cp_matches_plain,
    randomize_batch_norms,
)


def _timm(arch):
    torch.manual_seed(0)
    # ese_vovnet19b has a timm config but no registered entry point: build it from the config
    model = VovNet(model_cfgs[f'ese_vovnet{arch}b']).eval()
    return randomize_batch_norms(model)


@pytest.mark.parametrize('arch', ['19', '39', '57', '99'])
def test_parity_with_timm(arch, tmp_path):
    ref = _timm(arch)
    features = lambda x: ref.forward_intermediates(x, indices=[1, 2, 3, 4], intermediates_only=True)  # noqa: E731
    model = assert_matches_reference(VoVNet, arch, ref, features, 'head.', tmp_path)
    assert model.out_channels == (256, 512, 768, 1024) and model.out_strides == (4, 8, 16, 32)


@pytest.mark.parametrize('output_stride, strides', [(16, (4, 8, 16, 16)), (8, (4, 8, 8, 8))])
def test_output_stride(output_stride, strides):
    model = VoVNet(arch='19', output_stride=output_stride)
    assert_output_strides(model, strides)


def test_with_cp_same_outputs_and_gradients():
    assert_with_cp_matches_plain(VoVNet, arch='19')


def test_frozen_stages_and_norm_eval():
    model = VoVNet(arch='19', frozen_stages=1, norm_eval=True)
    model.train()
    for name, p in model.named_parameters():
        assert p.requires_grad != name.startswith(('stem.', 'stages.0.')), name
    assert all(not m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(arch='27'), KeyError, "unknown arch '27'"),
    (dict(out_indices=(4, )), ValueError, 'out of range'),
    (dict(frozen_stages=7), ValueError, 'frozen_stages must be in -1..4'),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        VoVNet(**kwargs)


def test_checkpoint_of_another_arch_fails_clearly(tmp_path):
    assert_other_arch_rejected(VoVNet, '19', '39', tmp_path)
