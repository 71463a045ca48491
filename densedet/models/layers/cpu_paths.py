"""CPU kernel choices for RDNet's mixer under bf16 autocast: the same maths, faster oneDNN calls.

* **Inference**: the 1x1 expansion and the GELU after it as one oneDNN call
  (``torch.ops.mkldnn._convolution_pointwise``, the kernel inductor's own CPU fusion emits): a
  separate GELU reads and writes the whole 4x widened expansion once more.
* **Training**: oneDNN's bf16 depthwise-convolution backward is slower than its fp32
  channels-last one (40 % against 22 % of a bf16 RDNet-T training step); the depthwise conv runs
  in fp32 channels-last when autograd records it. Its output is fp32, the LayerNorm after it then
  runs in fp32 and the next conv casts as usual.

Measured on RDNet-T in docs/benchmarks.md (``benchmark.py --models densedet,densedet-plain``).
Both are taken only in bf16 on CPU and never where tracing or export would see them
(``torch.compile`` / ``torch.export`` / TorchScript / ONNX export: inductor chooses its own kernels,
and a compiled training graph given the fp32 depthwise conv was no faster in a one-off check; ONNX
has no such op). fp32 runs PyTorch's plain ops, so the fp32 parity with timm is untouched.
:func:`cpu_paths` switches them off, e.g. to compare.
"""
import contextlib

import torch
import torch.nn as nn

_POINTWISE_CONV = getattr(getattr(torch.ops, 'mkldnn', None), '_convolution_pointwise', None)
_enabled = True


@contextlib.contextmanager
def cpu_paths(enabled: bool):
    """Turns this module's kernel choices on or off inside the ``with`` block."""
    global _enabled
    previous, _enabled = _enabled, enabled
    try:
        yield
    finally:
        _enabled = previous


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.get_autocast_dtype('cpu') if torch.is_autocast_enabled('cpu') else x.dtype


def _bf16_cpu_eager(x: torch.Tensor) -> bool:
    if not _enabled or x.device.type != 'cpu' or _compute_dtype(x) != torch.bfloat16:
        return False
    return not (torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting()
                or torch.onnx.is_in_onnx_export())


def fused_inference_applies(x: torch.Tensor) -> bool:
    """Whether ``x`` may go through a fused oneDNN kernel instead of the eager ops."""
    # bf16 only: in fp32 the gain did not measure above noise, and oneDNN's GELU rounds
    # differently from PyTorch's (1e-5 after a whole RDNet, the fp32 parity bound with timm).
    return (_POINTWISE_CONV is not None and not torch.is_grad_enabled() and _bf16_cpu_eager(x)
            and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def depthwise_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)``; in fp32 channels-last where autograd records it under bf16 autocast on CPU."""
    records = torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad)
    if (not records or not torch.is_autocast_enabled('cpu') or conv.weight.dtype != torch.float32
            or not _bf16_cpu_eager(x)):
        return conv(x)
    with torch.autocast('cpu', enabled=False):
        return conv(x.float().contiguous(memory_format=torch.channels_last))


def conv_gelu(conv: nn.Conv2d, act: nn.GELU, x: torch.Tensor) -> torch.Tensor:
    """``act(conv(x))``, in one oneDNN call where :func:`fused_inference_applies`, else eagerly.

    Under autocast the inputs are cast to the autocast dtype, as autocast does for ``conv2d``.
    """
    if not fused_inference_applies(x) or isinstance(conv.padding, str) or conv.padding_mode != 'zeros':
        return act(conv(x))
    dtype = _compute_dtype(x)
    bias = None if conv.bias is None else conv.bias.to(dtype)
    return _POINTWISE_CONV(x.to(dtype), conv.weight.to(dtype), bias, list(conv.padding), list(conv.stride),
                           list(conv.dilation), conv.groups, 'gelu', [], act.approximate)
