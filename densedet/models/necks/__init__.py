from .dense_fpn import DenseFPN, LevelFusion

__all__ = ['DenseFPN', 'LevelFusion']
