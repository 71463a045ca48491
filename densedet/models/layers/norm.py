"""Normalization layers shared by the dense families."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel dimension of an ``(N, C, *spatial)`` tensor.

    Parameter names (``weight``, ``bias``) and ``eps=1e-6`` match timm's
    ``LayerNorm2d`` so RDNet checkpoints load unchanged. Works for 2D and 3D
    inputs (the channel axis is always dim 1).
    """

    def __init__(self, num_channels: int, eps: float = 1e-6, affine: bool = True):
        super().__init__(num_channels, eps=eps, elementwise_affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # layer_norm normalizes trailing dims: move channels last and back.
        x = x.movedim(1, -1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.movedim(-1, 1)
