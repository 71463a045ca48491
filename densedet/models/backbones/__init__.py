from .densenet import DenseNet
from .rdnet import RDNet

__all__ = ["DenseNet", "RDNet"]
