"""Where densedet registers its parts.

Backbones, necks, optimizer constructors and optimizer wrappers have no
framework-specific code, so they go into mmengine's *root* registries: an
unprefixed ``type`` is looked up in the current scope's registry (mmseg's or
mmdet's) and then in its parents, so the root makes them visible to both
frameworks. Parts that subclass mmseg classes (decode heads, datasets) are
registered in mmseg's registries by their own modules.
"""
from mmengine.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS

__all__ = ['MODELS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'OPTIM_WRAPPERS']
