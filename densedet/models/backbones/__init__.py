from .densenet import DenseNet
from .dla import DLA
from .dpn import DPN
from .fc_densenet import FCDenseNet
from .hardnet import HarDNet
from .rdnet import RDNet
from .unet_encoder import UNetEncoder
from .vovnet import VoVNet

__all__ = ["DenseNet", "DLA", "DPN", "FCDenseNet", "HarDNet", "RDNet", "UNetEncoder", "VoVNet"]
