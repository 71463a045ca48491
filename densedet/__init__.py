"""densedet: densely connected networks for the OpenMMLab 2.x stack.

Importing this package registers densedet's models, datasets, transforms,
metrics and engine parts in the OpenMMLab registries and applies the small
compatibility fixes of :mod:`densedet.compat`.
"""
from . import compat

compat.apply()

from . import datasets, engine, evaluation, models, structures, transforms  # noqa: E402,F401

__version__ = '0.1.0'
