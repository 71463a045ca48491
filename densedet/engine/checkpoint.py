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
* ``torch.torch_version.TorchVersion`` (a ``str``);
* ``bytes``: pickle protocol 2 writes an empty ``bytes`` object (an empty numpy array's data, e.g.
  an empty ``HistoryBuffer`` saved at a run's first iteration) as a call of ``builtins.bytes``.

Anything else stops the load with :class:`UnsafeCheckpointError`, which names the file and the
refused global. For a checkpoint you trust, set ``DENSEDET_TRUST_CHECKPOINTS=1`` to load it with
full pickle (the pre-torch-2.6 behaviour).

``.safetensors`` files (``tools/publish_model.py``) load through the same entry point, their
``meta`` read back from the file's metadata. :func:`load_model_checkpoint` loads a checkpoint into a
model for evaluation or inference and refuses one that does not fit it exactly;
:func:`summarize_mismatch` is the one-line report used there and for partial loading (``load_from``,
``init_cfg``).
"""
import json
import os
import pickle
import re
from typing import List, Optional, Tuple

import torch

from densedet.errors import BadCheckpointError, DataNotFoundError, UnsafeCheckpointError

from .wrappers import is_wrapper, unwrap_model

__all__ = ['TRUST_ENV', 'UnsafeCheckpointError', 'checkpoint_safe_globals', 'load_checkpoint_file',
           'load_model_checkpoint', 'safe_load', 'state_dict_mismatch', 'summarize_mismatch', 'trusted']

TRUST_ENV = 'DENSEDET_TRUST_CHECKPOINTS'


_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')  # registered by its __init__


def strip_module_prefix(state_dict: dict) -> dict:
    """``state_dict`` without DataParallel's / DistributedDataParallel's ``module.`` key prefix."""
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state_dict.items()}


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
    globals_ = [HistoryBuffer, TorchVersion, bytes, np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar,
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
        except UnsafeCheckpointError:
            raise
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
    """A local checkpoint: ``torch.load`` through :func:`safe_load`, or a ``.safetensors`` file as
    ``{'state_dict': tensors, 'meta': the JSON meta tools/publish_model.py stores}``."""
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise DataNotFoundError(f'{filename} can not be found.')
    if filename.endswith('.safetensors'):
        from safetensors import safe_open
        from safetensors.torch import load_file
        device = map_location if isinstance(map_location, str) else 'cpu'
        with safe_open(filename, framework='pt') as f:
            metadata = f.metadata() or {}
        return dict(state_dict=load_file(filename, device=device), meta=json.loads(metadata.get('meta', '{}')))
    return safe_load(torch.load, filename, map_location=map_location)


def _loadable_state(module, prefix: str = '') -> dict:
    """The parameters and persistent buffers as mmengine's ``load_state_dict`` matches them: model
    wrappers and test-time-augmentation models are looked through at every depth."""
    if is_wrapper(module):
        module = module.module
    state = {prefix + n: p for n, p in module._parameters.items() if p is not None}
    state.update({prefix + n: b for n, b in module._buffers.items()
                  if b is not None and n not in module._non_persistent_buffers_set})
    for name, child in module._modules.items():
        if child is not None:
            state.update(_loadable_state(child, f'{prefix}{name}.'))
    return state


def state_dict_mismatch(model, state_dict) -> Tuple[List[str], List[str], List[Tuple[str, tuple, tuple]]]:
    """``(missing, unexpected, mismatched)`` keys of ``state_dict`` against ``model``; mismatched are
    ``(key, checkpoint shape, model shape)``. BatchNorm's ``num_batches_tracked`` may be missing (torch
    and mmengine fill it in)."""
    own = _loadable_state(model)
    missing = [k for k in own if k not in state_dict and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state_dict.items()
                  if k in own and hasattr(v, 'shape') and tuple(v.shape) != tuple(own[k].shape)]
    return missing, unexpected, mismatched


def _first(names, n=3) -> str:
    return ', '.join(names[:n]) + (', ...' if len(names) > n else '')


def summarize_mismatch(missing, unexpected, mismatched) -> str:
    """'3 missing (a, b, c), 1 unexpected (d), 1 of another shape (e: (2, 3) in the checkpoint, (4, 3)
    in the model)'; empty when the checkpoint fits."""
    parts = []
    if missing:
        parts.append(f'{len(missing)} missing ({_first(missing)})')
    if unexpected:
        parts.append(f'{len(unexpected)} unexpected ({_first(unexpected)})')
    if mismatched:
        key, got, want = mismatched[0]
        more = f' and {len(mismatched) - 1} more' if len(mismatched) > 1 else ''
        parts.append(f'{len(mismatched)} of another shape ({key}: {got} in the checkpoint, {want} in the model{more})')
    return ', '.join(parts)


_TIMESTAMP = r'_\d{8}_\d{6}$'  # mmengine's experiment_name suffix


def _trained_with(checkpoint: dict) -> str:
    """' (trained with config NAME)' from mmengine's ``meta['experiment_name']`` (``NAME_<timestamp>``)."""
    name = (checkpoint.get('meta') or {}).get('experiment_name') if isinstance(checkpoint, dict) else None
    if not name:
        return ''
    return f'; it was trained with config {re.sub(_TIMESTAMP, "", str(name))!r}'


def load_model_checkpoint(model, filename: str, map_location='cpu', config: Optional[str] = None,
                          checkpoint: Optional[dict] = None, **_) -> dict:
    """Loads ``filename`` (or the already read ``checkpoint``) into ``model`` for evaluation or
    inference and returns the checkpoint. Every parameter and buffer must be there with its shape and
    nothing else may be: otherwise one :class:`~densedet.errors.BadCheckpointError` names the file,
    the counts and first keys, ``config`` and the config the checkpoint was trained with. Keys that a
    model lists in ``obsolete_checkpoint_keys`` (parts removed from it since older checkpoints were
    written) are dropped by name. Accepts mmengine's ``load_checkpoint`` arguments, so it can stand in
    for it; the checkpoint it returns always has ``state_dict`` and ``meta``."""
    from mmengine.logging import print_log
    from mmengine.runner.checkpoint import _load_checkpoint
    if checkpoint is None:
        checkpoint = _load_checkpoint(filename, map_location=map_location)
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict) or not state_dict:
        raise BadCheckpointError(f'{filename}: holds no state dict (a {type(checkpoint).__name__})')
    if state_dict is checkpoint:  # a bare state dict: mmseg's init_model reads checkpoint['meta']
        checkpoint = dict(state_dict=state_dict)
    checkpoint.setdefault('meta', {})
    state_dict = strip_module_prefix(state_dict)
    target = unwrap_model(model)
    obsolete = [k for k in getattr(target, 'obsolete_checkpoint_keys', ()) if k in state_dict]
    for key in obsolete:
        del state_dict[key]
    if obsolete:
        print_log(f'{filename}: dropped {", ".join(obsolete)} ({type(target).__name__} no longer has them)',
                  logger='current')
    report = summarize_mismatch(*state_dict_mismatch(target, state_dict))
    if report:
        against = f' of {config}' if config else ''
        raise BadCheckpointError(f'{filename} does not fit the model{against}: {report}{_trained_with(checkpoint)}')
    from mmengine.runner import checkpoint as mmengine_checkpoint
    mmengine_checkpoint.load_state_dict(target, state_dict)  # it fits: loads silently
    return checkpoint


def partial_load_state_dict(original):
    """mmengine's ``load_state_dict`` for partial loading (``load_from``, ``init_cfg``, ``--resume``)
    with a one-line summary of what did not fit instead of its listing of every key."""
    import functools
    import logging

    from mmengine.logging import print_log

    @functools.wraps(original)
    def load_state_dict(module, state_dict, strict=False, logger=None):
        report = summarize_mismatch(*state_dict_mismatch(module, state_dict))
        if strict and report:
            raise BadCheckpointError(f'the checkpoint does not fit {type(module).__name__}: {report}')
        original(module, state_dict, strict=False, logger='silent')
        if report:
            print_log(f'loaded the checkpoint partially into {type(module).__name__}: {report}',
                      logger=logger or 'current', level=logging.WARNING)

    load_state_dict._densedet_summary = True
    return load_state_dict


def load_strictly(runner, config: Optional[str] = None) -> None:
    """Makes ``runner`` load its ``load_from`` with :func:`load_model_checkpoint` (tools/test.py):
    mmengine's ``Runner.load_checkpoint`` loads partially, so a checkpoint of another model would be
    evaluated with random weights. Hooks still see the checkpoint first (``after_load_checkpoint``,
    e.g. EMAHook swapping in its averaged weights), as in mmengine."""
    from mmengine.runner.checkpoint import _load_checkpoint

    def load_checkpoint(filename, map_location='cpu', strict=True, revise_keys=None):
        checkpoint = _load_checkpoint(filename, map_location=map_location)
        runner.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        load_model_checkpoint(runner.model, filename, config=config, checkpoint=checkpoint)
        runner._has_loaded = True  # what Runner.load_checkpoint records
        runner.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    runner.load_checkpoint = load_checkpoint
