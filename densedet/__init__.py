"""densedet: densely connected networks for the OpenMMLab 2.x stack.

Importing this package registers densedet's models, datasets, transforms,
metrics and engine parts in the OpenMMLab registries and applies the small
compatibility fixes of :mod:`densedet.compat`.
"""
# First: mmseg / mmdet import mmcv.ops, which needs mmcv._ext; without compiled ops (mmcv-lite)
# torchvision serves it (densedet/ops/mmcv_ext.py). A compiled mmcv._ext still wins.
from .ops.mmcv_ext import install_finder

install_finder()

from . import compat  # noqa: E402

compat.apply()

from . import datasets, engine, evaluation, fileio, models, structures, transforms  # noqa: E402,F401

__version__ = '0.1.0'
