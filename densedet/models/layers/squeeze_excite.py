"""Effective Squeeze-Excitation (CenterMask / VoVNetV2), as used by RDNet and VoVNet."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .utils import conv_type


class EffectiveSE(nn.Module):
    """One 1x1 conv on the globally pooled features, hard-sigmoid gate.

    Args:
        channels: channels of the input (and output).
        spatial_dims: 2 for images, 3 for volumes.
    """

    def __init__(self, channels: int, spatial_dims: int = 2):
        super().__init__()
        self.fc = conv_type(spatial_dims)(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(2, x.ndim))
        gate = F.hardsigmoid(self.fc(x.mean(dims, keepdim=True)))
        return x * gate
