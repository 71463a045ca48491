import pytest
import timm
import torch

from densedet.models.backbones import DPN

CHANNELS = {'68': (144, 320, 704, 832), '92': (336, 704, 1552, 2688), '98': (336, 768, 1728, 2688),
            '131': (352, 832, 1984, 2688)}


def _timm(arch):
    torch.manual_seed(0)
    model = timm.create_model(f'dpn{arch}', pretrained=False).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return model


@pytest.mark.parametrize('arch', ['68', '92', '98', '131'])
def test_parity_with_timm(arch, tmp_path):
    ref = _timm(arch)
    path = tmp_path / f'dpn{arch}.pth'
    torch.save(ref.state_dict(), path)
    model = DPN(arch=arch, init_cfg=dict(type='Pretrained', checkpoint=str(path))).eval()
    model.init_weights()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours = model(x)
        # timm applies its final BN + ReLU to the last level with norm=True
        theirs = ref.forward_intermediates(x, indices=[1, 2, 3, 4], norm=True, intermediates_only=True)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    head = sum(p.numel() for n, p in ref.named_parameters() if n.startswith('classifier.'))
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters()) - head
    assert model.out_channels == CHANNELS[arch] and model.out_strides == (4, 8, 16, 32)


@pytest.mark.parametrize('output_stride, strides', [(16, (4, 8, 16, 16)), (8, (4, 8, 8, 8))])
def test_output_stride(output_stride, strides):
    model = DPN(arch='68', output_stride=output_stride).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [64 // o.shape[-1] for o in outs] == list(strides) and model.out_strides == strides
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
    torch.manual_seed(0)
    plain, ckpt = DPN(arch='68'), DPN(arch='68', with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    outs_p, outs_c = plain(x), ckpt(x)
    for a, b in zip(outs_p, outs_c):
        torch.testing.assert_close(a, b)
    sum(o.mean() for o in outs_p).backward()
    sum(o.mean() for o in outs_c).backward()
    for (name, p1), p2 in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(p1.grad, p2.grad, msg=name)


def test_checkpoint_of_another_arch_fails_clearly(tmp_path):
    path = tmp_path / 'dpn68.pth'
    torch.save(DPN(arch='68').state_dict(), path)
    model = DPN(arch='92', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match=r"dpn68.pth does not fit DPN \(arch '92'\)"):
        model.init_weights()
