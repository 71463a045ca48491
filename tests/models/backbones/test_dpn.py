import pytest
import timm
import torch

from densedet.models.backbones import DPN

from helpers import (
    assert_matches_reference,
    assert_other_arch_rejected,
    assert_output_strides,
    assert_with_cp_matches_plain,
    randomize_batch_norms,
)

CHANNELS = {'68': (144, 320, 704, 832), '92': (336, 704, 1552, 2688), '98': (336, 768, 1728, 2688),
            '131': (352, 832, 1984, 2688)}


def _timm(arch):
    torch.manual_seed(0)
    model = timm.create_model(f'dpn{arch}', pretrained=False).eval()
    return randomize_batch_norms(model)


@pytest.mark.parametrize('arch', ['68', '92', '98', '131'])
def test_parity_with_timm(arch, tmp_path):
    ref = _timm(arch)
    # timm applies its final BN + ReLU to the last level with norm=True
    features = lambda x: ref.forward_intermediates(x, indices=[1, 2, 3, 4], norm=True, intermediates_only=True)  # noqa: E731
    model = assert_matches_reference(DPN, arch, ref, features, 'classifier.', tmp_path)
    assert model.out_channels == CHANNELS[arch] and model.out_strides == (4, 8, 16, 32)


@pytest.mark.parametrize('output_stride, strides', [(16, (4, 8, 16, 16)), (8, (4, 8, 8, 8))])
def test_output_stride(output_stride, strides):
    model = DPN(arch='68', output_stride=output_stride)
    assert_output_strides(model, strides)
    assert model.state_dict().keys() == DPN(arch='68').state_dict().keys()


def test_frozen_stages_and_norm_eval():
    model = DPN(arch='68', frozen_stages=1, norm_eval=True)
    model.train()
    for name, p in model.named_parameters():
        assert p.requires_grad != name.startswith(('features.conv1_', 'features.conv2_')), name
    assert all(not m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(arch='107x'), KeyError, "unknown arch '107x'"),
    (dict(out_indices=(4, )), ValueError, 'out of range'),
    (dict(frozen_stages=5), ValueError, 'frozen_stages must be in -1..4'),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        DPN(**kwargs)


def test_with_cp_same_outputs_and_gradients():
    assert_with_cp_matches_plain(DPN, arch='68')


def test_checkpoint_of_another_arch_fails_clearly(tmp_path):
    assert_other_arch_rejected(DPN, '68', '92', tmp_path)
