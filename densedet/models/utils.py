"""Helpers shared by the backbone families: argument validation and checkpoint loading."""
import math
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MMLogger, print_log

from densedet.errors import BadCheckpointError, BadConfigError, BadDataError, DataNotFoundError


def validate_out_indices(out_indices: Sequence[int], num_levels: int, owner: str) -> Tuple[int, ...]:
    """Checks ``out_indices`` against the number of output levels; returns them as a tuple."""
    if isinstance(out_indices, int):
        out_indices = (out_indices, )
    out_indices = tuple(int(i) for i in out_indices)
    if not out_indices:
        raise BadConfigError(f'{owner}: out_indices is empty')
    bad = [i for i in out_indices if not 0 <= i < num_levels]
    if bad:
        raise BadConfigError(f'{owner}: out_indices {bad} out of range; valid levels are 0..{num_levels - 1}')
    if list(out_indices) != sorted(set(out_indices)):
        raise BadConfigError(f'{owner}: out_indices must be increasing and unique, got {out_indices}')
    return out_indices


def validate_frozen_stages(frozen_stages: int, num_levels: int, owner: str) -> int:
    if not -1 <= frozen_stages <= num_levels:
        raise BadConfigError(f'{owner}: frozen_stages must be in -1..{num_levels} '
                             f'(-1: none, 0: stem, k: stem and levels < k), got {frozen_stages}')
    return frozen_stages


def read_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    """Reads a ``.pth``/``.pt``/``.bin`` or ``.safetensors`` file (or any URI mmengine knows)
    and returns the bare state dict (unwrapping ``state_dict`` / ``model`` / ``model_state`` / ``module``)."""
    if '://' not in path and not os.path.isfile(path):
        raise DataNotFoundError(f'checkpoint file not found: {path}')
    if '://' in path:
        from mmengine.runner.checkpoint import CheckpointLoader
        ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    else:  # runner checkpoints (numpy / mmengine objects next to the weights: allow-listed), .safetensors
        from densedet.engine.checkpoint import load_checkpoint_file
        ckpt = load_checkpoint_file(path, map_location='cpu')
    if not isinstance(ckpt, dict):
        raise TypeError(f'checkpoint {path} holds a {type(ckpt).__name__}, not a state dict')
    for wrapper in ('state_dict', 'model', 'model_state', 'module'):  # model_state: FC-HarDNet's .pkl
        if wrapper in ckpt and isinstance(ckpt[wrapper], dict):
            ckpt = ckpt[wrapper]
            break
    from densedet.engine.checkpoint import strip_module_prefix
    return strip_module_prefix(ckpt)


def load_pretrained_weights(module: nn.Module,
                            path: str,
                            prefix: Optional[str] = None,
                            filter_fn: Optional[Callable[[dict], dict]] = None,
                            logger: Optional[MMLogger] = None):
    """Loads upstream weights into ``module`` and reports what did not match.

    Args:
        path: checkpoint file (``.pth`` or ``.safetensors``).
        prefix: keep only keys under this prefix (e.g. ``'backbone.'`` to take the
            backbone out of a segmentor checkpoint), with the prefix stripped.
        filter_fn: maps the upstream names onto the module's.

    Raises a ``ValueError`` naming the file and key when a tensor's shape differs
    (usually a checkpoint of another arch) or when no key matches at all.
    """
    state = read_checkpoint(path)
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not state:
            raise BadCheckpointError(f'checkpoint {path} has no keys under prefix {prefix!r}')
    if filter_fn is not None:
        state = filter_fn(state)
    own = module.state_dict()
    owner = type(module).__name__
    arch = getattr(module, 'arch_name', None)
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            raise BadCheckpointError(f'checkpoint {path} does not fit {owner}{f" (arch {arch!r})" if arch else ""}: '
                                     f'{key} has shape {tuple(value.shape)}, the model expects '
                                     f'{tuple(own[key].shape)}. Is it a checkpoint of another arch?')
    if not set(state) & set(own):
        raise BadCheckpointError(f'checkpoint {path} has no key in common with {owner}; '
                                 f'first keys: {sorted(state)[:5]}')
    missing, unexpected = module.load_state_dict(state, strict=False)
    logger = logger or MMLogger.get_current_instance()
    print_log(f'{owner}: loaded {len(state) - len(unexpected)} tensors from {path}', logger=logger)
    if missing:
        print_log(f'{owner}: missing keys (kept their init): {missing}', logger=logger, level=30)
    if unexpected:
        print_log(f'{owner}: unexpected keys in {path} (ignored): {unexpected}', logger=logger, level=30)
    return missing, unexpected


def freeze(modules) -> None:
    """Puts ``modules`` in eval mode and stops their gradients (``frozen_stages``)."""
    for m in modules:
        m.eval()
        for p in m.parameters():
            p.requires_grad = False


def set_norm_eval(module: nn.Module) -> None:
    """Puts every batch norm of ``module`` in eval mode (``norm_eval``): running stats stay fixed."""
    from torch.nn.modules.batchnorm import _BatchNorm
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            m.eval()


def maybe_checkpoint(enabled: bool, fn, *args):
    """``fn(*args)``, under activation checkpointing when ``enabled`` and autograd is recording."""
    if enabled and torch.is_grad_enabled():
        import torch.utils.checkpoint as cp
        return cp.checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


def check_poolable(owner: str, spatial_size: Sequence[int], times: int,
                   strides: Optional[Sequence[Sequence[int]]] = None) -> None:
    """One clear error when an input cannot be halved ``times`` times (smaller than ``2**times``),
    or, with per-level ``strides`` (:func:`level_strides`), pooled by the first ``times`` of them."""
    if strides is None:
        if min(spatial_size) < 2**times:
            raise BadDataError(f'{owner}: input size {tuple(spatial_size)} is smaller than 2**n_pool = {2**times} in '
                               f'some dimension; it cannot be pooled {times} times')
        return
    total = total_stride(strides[:times], len(spatial_size))
    if any(size < t for size, t in zip(spatial_size, total)):
        raise BadDataError(f'{owner}: input size {tuple(spatial_size)} is smaller than the total stride '
                           f'{total} of its poolings {[tuple(s) for s in strides[:times]]}')


def total_stride(strides: Sequence[Sequence[int]], spatial_dims: int) -> Tuple[int, ...]:
    """Per-axis product of per-level strides (ones when there are none)."""
    return tuple(math.prod(axis) for axis in zip(*strides)) if strides else (1, ) * spatial_dims


def odd_kernel_size(owner: str, kernel_size, spatial_dims: int) -> Tuple[int, ...]:
    """``kernel_size`` (an int or one per axis) as a tuple of odd sizes, which "same" padding
    (``k // 2`` per axis) keeps the size of."""
    kernel = tuple(kernel_size) if isinstance(kernel_size, (list, tuple)) else (kernel_size, ) * spatial_dims
    if len(kernel) != spatial_dims or any(k < 1 or k % 2 == 0 for k in kernel):
        raise BadConfigError(f'{owner}: kernel_size needs {spatial_dims} odd sizes, got {kernel_size!r}')
    return kernel


def level_kernel_sizes(owner: str, kernel_sizes, levels: int, spatial_dims: int) -> List[Tuple[int, ...]]:
    """One odd conv kernel per level as a tuple of ``spatial_dims`` ints: ``None`` is 3 everywhere, an int
    that size everywhere, a list one int or per-axis tuple per level (nnU-Net's planned ``kernel_sizes``)."""
    if kernel_sizes is None or isinstance(kernel_sizes, int):
        kernel_sizes = [3 if kernel_sizes is None else kernel_sizes] * levels
    if len(kernel_sizes) != levels:
        raise BadConfigError(f'{owner}: kernel_sizes needs one entry per level ({levels}), got {list(kernel_sizes)}')
    return [odd_kernel_size(owner, k, spatial_dims) for k in kernel_sizes]


def level_strides(owner: str, strides, levels: int, spatial_dims: int) -> List[Tuple[int, ...]]:
    """Per-level pooling strides as ``levels`` tuples of ``spatial_dims`` ints: ``None`` is 2 everywhere,
    an int is that stride on every axis of every level, a list has one int or per-axis tuple per level
    (nnU-Net's plans, e.g. ``[(1, 2, 2), (2, 2, 2)]`` for anisotropic volumes)."""
    if strides is None or isinstance(strides, int):
        strides = [2 if strides is None else strides] * levels
    strides = list(strides)
    if len(strides) != levels:
        raise BadConfigError(f'{owner}: strides needs one entry per pooling ({levels}), got {strides}')
    out = [tuple(s) if isinstance(s, (list, tuple)) else (int(s), ) * spatial_dims for s in strides]
    if any(len(s) != spatial_dims or min(s) < 1 for s in out):
        raise BadConfigError(f'{owner}: every stride needs {spatial_dims} positive entries, got {strides}')
    return out


def check_in_channels(owner: str, feats: Sequence[torch.Tensor], expected: Sequence[int]) -> None:
    """One clear error when the features a head receives do not have the configured channels."""
    got = [f.shape[1] for f in feats]
    if got != list(expected):
        raise BadDataError(f'{owner}: inputs have {got} channels but in_channels is {list(expected)}')


def resize_logits(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Logits ``(N, K, *spatial)`` resized to ``size`` (bilinear in 2D, trilinear in 3D, as
    mmseg's ``resize`` with ``align_corners=False``); returned as they are when already there."""
    if tuple(logits.shape[2:]) == tuple(size):
        return logits
    mode = 'trilinear' if logits.ndim == 5 else 'bilinear'
    return F.interpolate(logits, size=tuple(size), mode=mode, align_corners=False)
