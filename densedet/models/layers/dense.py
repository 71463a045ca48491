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
from typing import Callable, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer

from densedet.errors import BadConfigError

from ..utils import maybe_checkpoint
from .utils import avg_pool_type, conv_type, max_pool_type, norm_cfg_for_dims


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
            layers added (FC-DenseNet's upsampling path); or a list of indices into
            ``[input, out_0, out_1, ...]`` (HarDNet keeps the odd ones and the last).
        connectivity: which earlier maps each layer sees, as indices into
            ``[input, out_0, ...]``: ``'dense'`` all of them (DenseNet); ``'chain'``
            only the previous one, everything aggregated once at the end (VoVNet's
            one-shot aggregation); or an explicit list per layer (HarDNet's harmonic
            links, see :func:`harmonic_links`).
        with_cp: checkpoint each layer (memory-efficient dense connectivity).
    """

    def __init__(self,
                 layers: Sequence[nn.Module],
                 layer_name: str = 'layer{}',
                 first_index: int = 0,
                 output: Union[str, Sequence[int]] = 'all',
                 connectivity: Union[str, Sequence[Sequence[int]]] = 'dense',
                 with_cp: bool = False):
        super().__init__()
        n = len(layers)
        if connectivity == 'dense':
            links = [list(range(i + 1)) for i in range(n)]
        elif connectivity == 'chain':
            links = [[i] for i in range(n)]
        elif isinstance(connectivity, str) or len(connectivity) != n:
            raise BadConfigError(f"DenseBlock connectivity must be 'dense', 'chain' or one list of links per layer, "
                                 f'got {connectivity!r}')
        else:
            links = [list(link) for link in connectivity]
        if output == 'all':
            output = list(range(n + 1))
        elif output == 'new':
            output = list(range(1, n + 1))
        elif isinstance(output, str):
            raise BadConfigError(f"DenseBlock output must be 'all', 'new' or a list of indices, got {output!r}")
        for i, layer in enumerate(layers):
            self.add_module(layer_name.format(i + first_index), layer)
        self.links = links
        self.output = list(output)
        self.with_cp = with_cp

    def forward_features(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The maps the block outputs, before their concatenation."""
        features: List[torch.Tensor] = [x]
        for layer, link in zip(self.children(), self.links):
            inputs = [features[j] for j in link]
            features.append(maybe_checkpoint(self.with_cp, _concat_and_apply, layer, *inputs))
        return [features[j] for j in self.output]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = self.forward_features(x)
        return outs[0] if len(outs) == 1 else torch.cat(outs, 1)


def harmonic_links(num_layers: int) -> List[List[int]]:
    """HarDNet's harmonic connectivity: layer ``k`` (1-based) reads the maps ``k - 2**i``
    for every ``2**i`` that divides ``k`` (index 0 is the block input)."""
    links = []
    for k in range(1, num_layers + 1):
        links.append([k - 2**i for i in range(k.bit_length()) if k % 2**i == 0])
    return links


def make_dense_layers(num_layers: int, in_channels: int, growth: int,
                      build_layer: Callable[[int, int], nn.Module]) -> List[nn.Module]:
    """Builds ``num_layers`` layers where layer ``i`` gets ``in_channels + i * growth`` inputs.

    ``build_layer(index, layer_in_channels)`` returns one layer.
    """
    return [build_layer(i, in_channels + i * growth) for i in range(num_layers)]


class DenseLayer(nn.Module):
    """The classic dense layer: BN-ReLU-conv, optionally behind a 1x1 bottleneck.

    * ``bottleneck_width=4`` (DenseNet-BC, torchvision's layout): ``norm1-relu1-conv1``
      (1x1 to ``4 * growth``) then ``norm2-relu2-conv2`` (3x3 to ``growth``);
    * ``bottleneck_width=None`` (FC-DenseNet): ``norm1-relu1-conv1`` (3x3 to ``growth``).

    Dropout (``drop_rate``) follows the last conv, as in both papers.

    Args:
        in_channels: channels of the concatenated input.
        growth: new channels this layer adds.
        spatial_dims: 2 (images) or 3 (volumes).
        dilation: dilation of the 3x3 conv (for output strides 8/16).
        norm_cfg / act_cfg: mmcv configs; for volumes use ``dict(type='BN3d')``.
        bias: convolutions with bias (FC-DenseNet's Lasagne layers have one; DenseNet does not).
    """

    def __init__(self,
                 in_channels: int,
                 growth: int,
                 bottleneck_width: Optional[int] = 4,
                 drop_rate: float = 0.0,
                 dilation: int = 1,
                 spatial_dims: int = 2,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 bias: bool = False):
        super().__init__()
        conv = conv_type(spatial_dims)
        norm_cfg = norm_cfg_for_dims(norm_cfg, spatial_dims)
        act_cfg = act_cfg or dict(type='ReLU', inplace=True)
        mid = in_channels
        index = 1
        if bottleneck_width is not None:
            mid = bottleneck_width * growth
            self.add_module('norm1', build_norm_layer(norm_cfg, in_channels)[1])
            self.add_module('relu1', build_activation_layer(act_cfg))
            self.add_module('conv1', conv(in_channels, mid, kernel_size=1, bias=bias))
            index = 2
        self.add_module(f'norm{index}', build_norm_layer(norm_cfg, mid)[1])
        self.add_module(f'relu{index}', build_activation_layer(act_cfg))
        self.add_module(f'conv{index}', conv(mid, growth, kernel_size=3, padding=dilation, dilation=dilation,
                                             bias=bias))
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.children():
            x = module(x)
        if self.drop_rate > 0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x


class DenseTransition(nn.Sequential):
    """BN-ReLU-1x1 conv [-dropout] then pooling by 2 (torchvision's ``_Transition`` names).

    Args:
        pool: ``'avg'`` (DenseNet), ``'max'`` (FC-DenseNet's transition down) or
            ``None`` (no downsampling, e.g. a dilated stage).
        pool_size: pooling window = stride, an int or one per spatial dim (``(1, 2, 2)``
            keeps the depth of a volume, as H-DenseUNet's 3D branch).
        bias: the 1x1 conv has a bias (FC-DenseNet).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 pool: Optional[str] = 'avg',
                 drop_rate: float = 0.0,
                 spatial_dims: int = 2,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 bias: bool = False,
                 pool_size: Union[int, Sequence[int]] = 2):
        super().__init__()
        norm_cfg = norm_cfg_for_dims(norm_cfg, spatial_dims)
        pool_size = tuple(pool_size) if isinstance(pool_size, (list, tuple)) else pool_size
        act_cfg = act_cfg or dict(type='ReLU', inplace=True)
        self.add_module('norm', build_norm_layer(norm_cfg, in_channels)[1])
        self.add_module('relu', build_activation_layer(act_cfg))
        self.add_module('conv', conv_type(spatial_dims)(in_channels, out_channels, kernel_size=1, bias=bias))
        if drop_rate > 0:
            self.add_module('drop', nn.Dropout(drop_rate))
        if pool == 'avg':
            self.add_module('pool', avg_pool_type(spatial_dims)(kernel_size=pool_size, stride=pool_size))
        elif pool == 'max':
            self.add_module('pool', max_pool_type(spatial_dims)(kernel_size=pool_size, stride=pool_size))
        elif pool is not None:
            raise BadConfigError(f"DenseTransition pool must be 'avg', 'max' or None, got {pool!r}")


class CrossStagePartial(nn.Module):
    """CSPNet's cross-stage partial connection around a block ("CSPNet: A New Backbone that can Enhance
    Learning Capability of CNN", Wang et al., CVPR-W 2020, Sec. 3.1 / Fig. 2b).

    The input's channels are split: the first ``in_channels - round(ratio * in_channels)`` pass straight to
    the output; the other ``round(ratio * in_channels)`` go through ``block`` and a *partial transition*
    (BN-ReLU-1x1 conv that halves the block's output, DenseNet-BC's compression); the two parts are
    concatenated. The stage's own transition follows outside. The dense layers thus read about half as many
    channels and gradients of the passed part are not duplicated through every layer.

    Args:
        in_channels: channels of the stage input.
        ratio: the share of channels that goes through the block, in (0, 1) (CSPDenseNet: 0.5).
        build_block: ``build_block(channels)`` returns the block for the partial input and its output width.
        spatial_dims / norm_cfg / act_cfg: of the partial transition.
    """

    def __init__(self, in_channels: int, ratio: float, build_block: Callable[[int], tuple], spatial_dims: int = 2,
                 norm_cfg: Optional[dict] = None, act_cfg: Optional[dict] = None):
        super().__init__()
        check_csp_ratio(ratio, 'CrossStagePartial')
        self.partial = int(round(in_channels * ratio))
        self.passed = in_channels - self.partial
        if self.partial < 1 or self.passed < 1:
            raise BadConfigError(f'CrossStagePartial: ratio {ratio} of {in_channels} channels leaves an empty part')
        self.block, block_out = build_block(self.partial)
        self.partial_transition = DenseTransition(block_out, block_out // 2, pool=None, spatial_dims=spatial_dims,
                                                  norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.out_channels = self.passed + block_out // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        passed, partial = torch.split(x, [self.passed, self.partial], dim=1)
        return torch.cat([passed, self.partial_transition(self.block(partial))], dim=1)


def check_csp_ratio(ratio: float, owner: str) -> None:
    if not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
        raise BadConfigError(f'{owner}: csp_ratio must be in (0, 1) (the share of channels through the dense '
                             f'block; CSPNet uses 0.5), got {ratio!r}')


def fc_dense_block(num_layers: int, in_channels: int, growth: int, output: str, drop_rate: float,
                   spatial_dims: int, norm_cfg: Optional[dict], act_cfg: Optional[dict],
                   with_cp: bool = False) -> DenseBlock:
    """A Tiramisu dense block: ``num_layers`` BN-ReLU-3x3 conv (+bias) - dropout layers."""
    layers = make_dense_layers(
        num_layers, in_channels, growth,
        lambda i, c: DenseLayer(c, growth, bottleneck_width=None, drop_rate=drop_rate, spatial_dims=spatial_dims,
                                norm_cfg=norm_cfg, act_cfg=act_cfg, bias=True))
    return DenseBlock(layers, layer_name='layer{}', output=output, with_cp=with_cp)
