"""Dense connectivity: the one implementation every densedet family composes.

A :class:`DenseBlock` holds ``L`` layers; layer ``i`` sees the concatenation of
the block input and the outputs of layers ``0..i-1`` and adds ``growth`` new
channels. What a layer computes (BN-ReLU-conv for DenseNet/FC-DenseNet, the
depthwise mixer for RDNet, ...) is the family's business: the block only
concatenates, optionally checkpoints, and assembles the output.

Memory: plain mode keeps every concatenated input alive for backward
(O(L^2) activations per block). ``with_cp=True`` is the memory-efficient
scheme of Pleiss et al. (2017): each layer's concatenation *and* its
computation run under ``torch.utils.checkpoint``, so only the block input and
the layers' outputs (O(L)) are stored and the concatenations are recomputed in
backward.
"""
from typing import Callable, List, Sequence

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp


def _concat_and_apply(layer: nn.Module, *features: torch.Tensor) -> torch.Tensor:
    inputs = features[0] if len(features) == 1 else torch.cat(features, 1)
    return layer(inputs)


class DenseBlock(nn.Module):
    """A block of densely connected layers.

    Args:
        layers: the layers, in order; layer ``i`` must accept
            ``in_channels + i * growth`` channels (for the block's own growth).
        layer_name: format string of the child names, e.g. ``'dense_block{}'``
            (timm RDNet) or ``'denselayer{}'`` with ``first_index=1``
            (torchvision DenseNet), so upstream checkpoints keep their keys.
        output: ``'all'`` returns the block input concatenated with every new
            feature map (DenseNet, RDNet); ``'new'`` returns only the maps the
            layers added (FC-DenseNet's upsampling path).
        with_cp: checkpoint each layer (memory-efficient dense connectivity).
    """

    def __init__(self,
                 layers: Sequence[nn.Module],
                 layer_name: str = 'layer{}',
                 first_index: int = 0,
                 output: str = 'all',
                 with_cp: bool = False):
        super().__init__()
        if output not in ('all', 'new'):
            raise ValueError(f"DenseBlock output must be 'all' or 'new', got {output!r}")
        for i, layer in enumerate(layers):
            self.add_module(layer_name.format(i + first_index), layer)
        self.output = output
        self.with_cp = with_cp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features: List[torch.Tensor] = [x]
        # Recomputation only pays off when a backward pass will follow.
        use_cp = self.with_cp and torch.is_grad_enabled()
        for layer in self.children():
            if use_cp:
                new = cp.checkpoint(_concat_and_apply, layer, *features, use_reentrant=False)
            else:
                new = _concat_and_apply(layer, *features)
            features.append(new)
        if self.output == 'new':
            features = features[1:]
        return features[0] if len(features) == 1 else torch.cat(features, 1)


def make_dense_layers(num_layers: int, in_channels: int, growth: int,
                      build_layer: Callable[[int, int], nn.Module]) -> List[nn.Module]:
    """Builds ``num_layers`` layers where layer ``i`` gets ``in_channels + i * growth`` inputs.

    ``build_layer(index, layer_in_channels)`` returns one layer.
    """
    return [build_layer(i, in_channels + i * growth) for i in range(num_layers)]
