from .checks import CheckSegSample

__all__ = ['CheckSegSample']
