from .dense_unet_head import DenseUNetHead
from .dla_up_head import DLAUpHead, dlaup_official_to_mmseg
from .fc_densenet_head import FCDenseNetHead
from .fc_hardnet_head import FCHarDNetHead, fchardnet_official_to_mmseg
from .unetpp_head import UNetPlusPlusHead, prune_unetpp

__all__ = [
    'DenseUNetHead', 'DLAUpHead', 'dlaup_official_to_mmseg', 'FCDenseNetHead', 'FCHarDNetHead',
    'fchardnet_official_to_mmseg', 'UNetPlusPlusHead', 'prune_unetpp'
]
