import pytest
import timm
import torch

from densedet.models.backbones import DLA

CHANNELS = {'34': (64, 128, 256, 512), '60': (128, 256, 512, 1024), '102': (128, 256, 512, 1024)}


def _timm(arch):
    torch.manual_seed(0)
    model = timm.create_model(f'dla{arch}', pretrained=False).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return model


@pytest.mark.parametrize('arch', ['34', '60', '102'])
def test_parity_with_timm(arch, tmp_path):
    ref = _timm(arch)
    path = tmp_path / f'dla{arch}.pth'
    torch.save(ref.state_dict(), path)
    model = DLA(arch=arch, init_cfg=dict(type='Pretrained', checkpoint=str(path))).eval()
    model.init_weights()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours = model(x)
        theirs = ref.forward_intermediates(x, indices=[2, 3, 4, 5], intermediates_only=True)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    head = sum(p.numel() for n, p in ref.named_parameters() if n.startswith('fc.'))
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters()) - head
    assert model.out_channels == CHANNELS[arch] and model.out_strides == (4, 8, 16, 32)


@pytest.mark.parametrize('output_stride, strides', [(16, (4, 8, 16, 16)), (8, (4, 8, 8, 8))])
def test_output_stride(output_stride, strides):
    model = DLA(arch='34', output_stride=output_stride).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [64 // o.shape[-1] for o in outs] == list(strides) and model.out_strides == strides
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
    path = tmp_path / 'dla34.pth'
    torch.save(_timm('34').state_dict(), path)
    model = DLA(arch='60', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match=r"dla34.pth does not fit DLA \(arch '60'\)"):
        model.init_weights()


def test_with_cp_same_outputs_and_gradients():
    torch.manual_seed(0)
    plain, ckpt = DLA(arch='34'), DLA(arch='34', with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    outs_p, outs_c = plain(x), ckpt(x)
    for a, b in zip(outs_p, outs_c):
        torch.testing.assert_close(a, b)
    sum(o.mean() for o in outs_p).backward()
    sum(o.mean() for o in outs_c).backward()
    for (name, p1), p2 in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(p1.grad, p2.grad, msg=name)
