from .dense_fpn import DenseFPN, LevelFusion
from .dla_up import DLAUpNeck

__all__ = ['DenseFPN', 'DLAUpNeck', 'LevelFusion']
