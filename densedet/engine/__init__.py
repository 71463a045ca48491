from .hooks import RandomStateHook
from .optim_wrappers import CPUAmpOptimWrapper
from .optimizers import DenseLayerDecayConstructor

__all__ = ['CPUAmpOptimWrapper', 'DenseLayerDecayConstructor', 'RandomStateHook']
