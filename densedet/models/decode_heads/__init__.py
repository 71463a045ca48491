from .dense_unet_head import DenseUNetHead
from .fc_densenet_head import FCDenseNetHead
from .unetpp_head import UNetPlusPlusHead, prune_unetpp

__all__ = ['DenseUNetHead', 'FCDenseNetHead', 'UNetPlusPlusHead', 'prune_unetpp']
