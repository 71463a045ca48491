from .densenet import DenseNet
from .dla import DLA
from .dpn import DPN
from .hardnet import HarDNet
from .rdnet import RDNet
from .vovnet import VoVNet

__all__ = ["DenseNet", "DLA", "DPN", "HarDNet", "RDNet", "VoVNet"]
