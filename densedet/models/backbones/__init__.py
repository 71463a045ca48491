from .rdnet import RDNet

__all__ = ['RDNet']
