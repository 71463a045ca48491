"""RDNet's CPU kernel choices under bf16 autocast: the fused conv + GELU (inference) and the fp32
channels-last depthwise conv (training) give the plain ops' numbers, are taken only where they
apply, never where compilation or export would see them; RDNet keeps bf16 features."""
import functools

import pytest
import torch
import torch.nn as nn

from densedet.models.backbones import RDNet
from densedet.models.layers import cpu_paths as fused
from densedet.models.layers.cpu_paths import conv_gelu, cpu_paths, depthwise_conv

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
    run = functools.partial(conv_gelu, conv, act)
    if case == 'compiled':  # dynamo sees the plain ops (inductor fuses them itself)
        torch._dynamo.reset()
        run = torch.compile(run, backend='eager', fullgraph=True)
    with torch.set_grad_enabled(case == 'grad'), torch.autocast('cpu', dtype=torch.bfloat16, enabled=case != 'fp32'), \
            cpu_paths(case != 'switched_off'):
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
        with cpu_paths(False):
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


def _depthwise_and_input():
    torch.manual_seed(0)
    return nn.Conv2d(16, 16, 7, padding=3, groups=16), torch.randn(2, 16, 12, 10, requires_grad=True)


def test_depthwise_conv_runs_fp32_channels_last_when_training_under_bf16():
    conv, x = _depthwise_and_input()
    grads = []
    for enabled in (True, False):
        with torch.autocast('cpu', dtype=torch.bfloat16), cpu_paths(enabled):
            out = depthwise_conv(conv, x.to(torch.bfloat16))
        if enabled:
            assert out.dtype == torch.float32 and out.is_contiguous(memory_format=torch.channels_last)
        else:
            assert out.dtype == torch.bfloat16
        conv.zero_grad()
        x.grad = None
        out.float().square().sum().backward()
        grads.append((out.detach().float(), conv.weight.grad.clone(), x.grad.clone()))
    for fast, plain in zip(*grads):  # fp32 against bf16: within bf16's precision
        torch.testing.assert_close(fast, plain, atol=0.05 * plain.abs().max().item(), rtol=0.02)


@pytest.mark.parametrize('case', ['no_grad', 'fp32', 'frozen', 'compiled'])
def test_depthwise_conv_keeps_the_plain_op(case):
    conv, x = _depthwise_and_input()
    if case == 'frozen':  # nothing for autograd to record: the bf16 forward is the faster one
        conv.requires_grad_(False)
        x = x.detach()
    run = functools.partial(depthwise_conv, conv)
    if case == 'compiled':
        torch._dynamo.reset()
        run = torch.compile(run, backend='eager', fullgraph=True)
    with torch.set_grad_enabled(case != 'no_grad'), torch.autocast('cpu', dtype=torch.bfloat16,
                                                                     enabled=case != 'fp32'):
        out = run(x)
    assert out.dtype == (torch.float32 if case == 'fp32' else torch.bfloat16)


def test_rdnet_bf16_training_step_matches_the_plain_ops():
    torch.manual_seed(0)
    model = RDNet(arch='tiny', ls_init_value=0.5).train()
    x = torch.randn(2, 3, 64, 64)
    grads = []
    for enabled in (True, False):
        model.zero_grad()
        with torch.autocast('cpu', dtype=torch.bfloat16), cpu_paths(enabled):
            outs = model(x)
        assert [o.dtype for o in outs] == [torch.bfloat16] * 4
        sum(o.float().mean() for o in outs).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for fast, plain in zip(*grads):
        assert (fast - plain).abs().max() <= 0.05 * plain.abs().max() + 1e-6
