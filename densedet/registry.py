"""The one place densedet reaches the OpenMMLab registries from.

Parts with no framework-specific code (backbones, necks, losses, volume segmentors, datasets,
transforms, metrics, hooks, optimizer constructors and wrappers) go into mmengine's *root*
registries: an unprefixed ``type`` is looked up in the current scope's registry (mmseg's or
mmdet's) and then in its parents, so the root makes them visible to both frameworks. Parts that
subclass a framework's classes go into that framework's registry: decode heads and the CamVid
dataset into mmseg's (``MMSEG_MODELS``, ``MMSEG_DATASETS``), the checked COCO dataset into mmdet's
(``MMDET_DATASETS``). Every densedet module imports its registry from here.
"""
from mmdet.registry import DATASETS as MMDET_DATASETS
from mmengine.registry import (
    DATASETS,
    HOOKS,
    METRICS,
    MODELS,
    OPTIM_WRAPPER_CONSTRUCTORS,
    OPTIM_WRAPPERS,
    TRANSFORMS,
)
from mmseg.registry import DATASETS as MMSEG_DATASETS
from mmseg.registry import MODELS as MMSEG_MODELS

__all__ = ['DATASETS', 'HOOKS', 'METRICS', 'MMDET_DATASETS', 'MMSEG_DATASETS', 'MMSEG_MODELS', 'MODELS',
           'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'TRANSFORMS']
