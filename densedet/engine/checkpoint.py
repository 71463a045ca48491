"""Checkpoint loading without pickle code execution.

A ``.pth`` file is a pickle: loading it with ``torch.load(weights_only=False)`` runs whatever
code it carries. torch's ``weights_only=True`` unpickler accepts only tensors, containers and
primitives, which refuses mmengine's runner checkpoints (they keep the message hub's
``HistoryBuffer`` objects and numpy scalars / arrays next to the weights). densedet loads every
checkpoint with ``weights_only=True`` plus an explicit allow-list of what mmengine / mmseg /
mmdet / densedet checkpoints legitimately contain:

* ``mmengine.logging.HistoryBuffer``, and ``getattr(HistoryBuffer, NAME)`` for NAME among its
  registered statistics methods (``min``, ``max``, ``current``, ``mean``: the buffer pickles them
  that way); any other ``getattr`` is refused;
* numpy arrays, scalars and dtypes (numpy 2 names and numpy 1's ``numpy.core`` ones);
* ``torch.torch_version.TorchVersion`` (a ``str``).

Anything else stops the load with :class:`UnsafeCheckpointError`, which names the file and the
refused global. For a checkpoint you trust, set ``DENSEDET_TRUST_CHECKPOINTS=1`` to load it with
full pickle (the pre-torch-2.6 behaviour).
"""
import os
import pickle
import re

import torch

TRUST_ENV = 'DENSEDET_TRUST_CHECKPOINTS'


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint whose pickle needs more than densedet's allow-list."""


_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')  # registered by its __init__


def _history_buffer_getattr(obj, name):
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and (name in _HISTORY_BUFFER_STATISTICS or name in HistoryBuffer._statistics_methods):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'GLOBAL builtins.getattr refused for getattr({obj!r}, {name!r})')


def checkpoint_safe_globals():
    """The allow-list handed to ``torch.serialization.safe_globals``."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    from torch.torch_version import TorchVersion
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    globals_ = [HistoryBuffer, TorchVersion, np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar,
                (_history_buffer_getattr, 'builtins.getattr'),
                # numpy 1.x wrote these names; numpy 2 still resolves them.
                (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
                (multiarray.scalar, 'numpy.core.multiarray.scalar')]
    globals_ += [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith('DType')]
    return globals_


def trusted() -> bool:
    return os.environ.get(TRUST_ENV) == '1'


def safe_load(load, source, **kwargs):
    """Calls ``load(source, weights_only=..., **kwargs)`` (``torch.load`` or
    ``torch.hub.load_state_dict_from_url``) with the allow-list, or with full pickle when
    ``DENSEDET_TRUST_CHECKPOINTS=1``; a refused pickle raises one :class:`UnsafeCheckpointError`."""
    if trusted():
        return load(source, weights_only=False, **kwargs)
    with torch.serialization.safe_globals(checkpoint_safe_globals()):
        try:
            return load(source, weights_only=True, **kwargs)
        except pickle.UnpicklingError as error:
            found = re.search(r'GLOBAL ([\w.]+)', str(error))
            what = f'`{found.group(1)}`' if found else 'an object'
            reason = re.search(r'WeightsUnpickler error:\s*([^\n]*)', str(error))
            reason = (reason.group(1) if reason else str(error).splitlines()[0]).split('. Please use')[0]
            raise UnsafeCheckpointError(
                f'{source}: refused to load: its pickle needs {what}, which is not in densedet\'s '
                'allow-list for checkpoints (tensors, containers, numpy arrays / scalars, mmengine\'s '
                'HistoryBuffer); unpickling it could run arbitrary code. If you trust this file, set '
                f'{TRUST_ENV}=1 to load it with full pickle. (torch: {reason})') from None


def load_checkpoint_file(filename, map_location=None):
    """``torch.load`` of a local checkpoint through :func:`safe_load`."""
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return safe_load(torch.load, filename, map_location=map_location)
