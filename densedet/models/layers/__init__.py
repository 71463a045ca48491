"""The dense-connectivity core shared by every densedet family."""
from .conv_block import conv_block
from .dense import (
    CrossStagePartial,
    DenseBlock,
    DenseLayer,
    DenseTransition,
    check_csp_ratio,
    fc_dense_block,
    harmonic_links,
    make_dense_layers,
)
from .harmonic import CombConvLayer, ConvLayer, DWConvLayer, HarDBlock
from .norm import LayerNorm2d
from .squeeze_excite import EffectiveSE
from .utils import (
    avg_pool_type,
    conv_transpose_type,
    conv_type,
    max_pool_type,
    norm_cfg_for_dims,
    round_down_to_multiple,
)
from .weight_init import kaiming_init_convs

__all__ = [
    'conv_block', 'CrossStagePartial', 'check_csp_ratio', 'DenseBlock', 'DenseLayer', 'DenseTransition',
    'fc_dense_block', 'harmonic_links', 'make_dense_layers', 'ConvLayer', 'DWConvLayer', 'CombConvLayer',
    'HarDBlock', 'LayerNorm2d', 'EffectiveSE', 'conv_type', 'conv_transpose_type', 'max_pool_type',
    'avg_pool_type', 'norm_cfg_for_dims', 'round_down_to_multiple', 'kaiming_init_convs'
]
