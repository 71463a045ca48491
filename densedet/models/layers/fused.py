"""Inference fast path: a convolution and the GELU after it as one oneDNN call.

In eager bf16 CPU inference a separate GELU reads and writes the whole (4x widened) expansion of
every RDNet mixer once more; oneDNN applies it as a post-op of the convolution while the output
is still in cache (``torch.ops.mkldnn._convolution_pointwise``, the kernel inductor's own CPU
fusion emits). Measured on RDNet-T, docs/benchmarks.md. The path is taken only where it cannot
change what autograd, tracing or export see: bf16 (autocast or bf16 weights), no gradients, CPU
tensors, not under ``torch.compile`` / ``torch.export`` / TorchScript / ONNX export (inductor
fuses by itself; ONNX has no such op). :func:`fused_inference` switches it off, e.g. to compare
against the plain ops.
"""
import contextlib

import torch
import torch.nn as nn

_POINTWISE_CONV = getattr(getattr(torch.ops, 'mkldnn', None), '_convolution_pointwise', None)
_enabled = True


@contextlib.contextmanager
def fused_inference(enabled: bool):
    """Turns the fused inference kernels on or off inside the ``with`` block."""
    global _enabled
    previous, _enabled = _enabled, enabled
    try:
        yield
    finally:
        _enabled = previous


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.get_autocast_dtype('cpu') if torch.is_autocast_enabled('cpu') else x.dtype


def fused_inference_applies(x: torch.Tensor) -> bool:
    """Whether ``x`` may go through a fused oneDNN kernel instead of the eager ops."""
    if not _enabled or _POINTWISE_CONV is None or torch.is_grad_enabled() or x.device.type != 'cpu':
        return False
    if (torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting()
            or torch.onnx.is_in_onnx_export()):
        return False
    # bf16 only: where the convolutions are cheap and the separate GELU pass shows. In fp32 the
    # gain did not measure above noise, and oneDNN's GELU rounds differently from PyTorch's
    # (1e-5 after a whole RDNet), which would cost the fp32 parity with timm.
    return _compute_dtype(x) == torch.bfloat16 and torch.ops.mkldnn._is_mkldnn_bf16_supported()


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

