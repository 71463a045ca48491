"""The oneDNN conv + GELU inference path: same numbers as the eager pair, taken only in bf16 CPU
inference, never where autograd, compilation or export would see it; RDNet keeps bf16 features."""
import pytest
import torch
import torch.nn as nn

from densedet.models.backbones import RDNet
from densedet.models.layers import fused
from densedet.models.layers.fused import conv_gelu, fused_inference

pytestmark = pytest.mark.skipif(fused._POINTWISE_CONV is None or not torch.ops.mkldnn._is_mkldnn_bf16_supported(),
                                reason='this PyTorch / CPU has no oneDNN bf16 convolution with post-ops')


@pytest.fixture
def fused_calls(monkeypatch):
    """Counts the fused kernel's calls."""
    calls = []
    kernel = fused._POINTWISE_CONV

    def counting(*args):
        calls.append(args[7])
        return kernel(*args)

    monkeypatch.setattr(fused, '_POINTWISE_CONV', counting)
    return calls


def _conv_and_input():
    torch.manual_seed(0)
    return nn.Conv2d(16, 64, 1), nn.GELU(), torch.randn(2, 16, 9, 11)


@pytest.mark.parametrize('approximate', ['none', 'tanh'])
def test_fused_conv_gelu_matches_eager_under_bf16_autocast(fused_calls, approximate):
    conv, _, x = _conv_and_input()
    act = nn.GELU(approximate=approximate)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = conv_gelu(conv, act, x)
        expected = act(conv(x))
    assert fused_calls == ['gelu']
    assert out.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected.float(), atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize('case', ['fp32', 'grad', 'switched_off', 'compiled'])
def test_fused_kernel_is_not_used(fused_calls, case):
    conv, act, x = _conv_and_input()
    run = (lambda t: conv_gelu(conv, act, t))
    if case == 'compiled':  # dynamo sees the plain ops (inductor fuses them itself)
        torch._dynamo.reset()
        run = torch.compile(run, backend='eager', fullgraph=True)
    with torch.set_grad_enabled(case == 'grad'), torch.autocast('cpu', dtype=torch.bfloat16, enabled=case != 'fp32'), \
            fused_inference(case != 'switched_off'):
        out = run(x)
    assert fused_calls == []
    # fp32 keeps PyTorch's own GELU bit for bit: the RDNet parity with timm is at 1e-5
    if case == 'fp32':
        assert torch.equal(out, act(conv(x)))


def test_rdnet_bf16_inference_fuses_every_mixer_and_keeps_bf16_features(fused_calls):
    torch.manual_seed(0)
    model = RDNet(arch='tiny', ls_init_value=0.5).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        outs = model(x)
        assert len(fused_calls) == 21  # 7 stages x 3 mixers
        with fused_inference(False):
            plain = model(x)
    with torch.no_grad():
        reference = model(x)
    # The layer scale is applied in the activations' dtype: an fp32 scale would promote every
    # new feature map, and with it the concatenations and outputs, to fp32.
    assert [o.dtype for o in outs] == [torch.bfloat16] * 4
    for a, b, r in zip(outs, plain, reference):
        torch.testing.assert_close(a.float(), b.float(), atol=0.1, rtol=0.05)
        # bf16 against fp32: within bf16's precision relative to the map's scale
        assert (a.float() - r).abs().max() < 0.05 * r.abs().max()
