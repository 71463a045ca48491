from .fc_densenet_head import FCDenseNetHead
from .unetpp_head import UNetPlusPlusHead, prune_unetpp

__all__ = ['FCDenseNetHead', 'UNetPlusPlusHead', 'prune_unetpp']
