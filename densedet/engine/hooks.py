"""Exact resume: the random streams of an interrupted run continue where its checkpoint left them.

mmengine's ``--resume`` restores weights, optimizer, schedulers and the loop position, and then
re-seeds every generator with the config's seed: the drop-path masks, the augmentations drawn in
the main process and anything else random after the resume differ from the uninterrupted run.
:class:`RandomStateHook` stores the Python, numpy and torch (and CUDA) generator states of every
checkpoint and puts them back at the point where the uninterrupted run would have
drawn its next number:

* ``IterBasedTrainLoop``: mmengine replays the data loader up to the resumed iteration (the
  sampler order and the data workers' streams come back that way, as the workers are seeded
  by ``randomness.seed``); the states are restored right after that replay, before the next
  batch is loaded;
* ``EpochBasedTrainLoop``: restored before the first resumed epoch's batches. Workers created
  per epoch (``persistent_workers=False`` or ``num_workers=0``) start every epoch from the
  seed, in both runs; persistent workers keep their streams across epochs, which a resumed run
  cannot reproduce (a warning says so).

Checkpoints are written by rank 0 only, so distributed runs store rank 0's states: with mmengine's
default ``randomness.diff_rank_seed=False`` every rank draws the same numbers and restores them;
with ``diff_rank_seed=True`` the ranks' streams differ, and they restart from their seeds (warned).

Validation leaves the generators as it found them, so whether and how often a run validates
does not change its training. tools/train.py adds the hook to every config.
"""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from densedet.registry import HOOKS

CHECKPOINT_KEY = 'random_states'


def get_random_state() -> dict:
    state = dict(python=random.getstate(), numpy=np.random.get_state(legacy=False), torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict) -> None:
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))  # a checkpoint may hand back a list
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class _RestoreAfterReplay:
    """Stands in for the loop's data iterator: after ``replayed`` batches (mmengine's replay of
    the trained iterations) it restores ``state`` and hands the loop its own iterator back."""

    def __init__(self, loop, replayed: int, state: dict):
        self._loop, self._inner, self._left, self._state = loop, loop.dataloader_iterator, replayed, state

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self._inner)
        self._left -= 1
        if self._left == 0:
            set_random_state(self._state)
            self._loop.dataloader_iterator = self._inner
        return batch

    def __getattr__(self, name):
        return getattr(self._inner, name)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Saves the generators' states in each checkpoint; ``--resume`` restores them
    (see the module docstring for when). Loading a checkpoint with ``load_from`` (fine-tuning,
    a previous stage) does not touch the generators."""

    priority = 'LOWEST'  # restore after every other hook's before_train_epoch

    def __init__(self):
        self._resumed_state: Optional[dict] = None
        self._val_state: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = get_random_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._resumed_state = checkpoint.get(CHECKPOINT_KEY)

    def before_train_epoch(self, runner) -> None:
        state, self._resumed_state = self._resumed_state, None
        loop = runner.train_loop
        if not state or loop.iter == 0:
            return  # a fresh run, or weights loaded to start from (load_from)
        if get_world_size() > 1 and runner._randomness_cfg.get('diff_rank_seed', False):
            print_log('resume: randomness.diff_rank_seed=True: the checkpoint holds rank 0\'s random states only; '
                      'every rank restarts its generators from its seed', logger='current', level='WARNING')
            return
        if isinstance(loop, IterBasedTrainLoop):
            loop.dataloader_iterator = _RestoreAfterReplay(loop, loop.iter, state)
        elif isinstance(loop, EpochBasedTrainLoop):
            self._check_epoch_resume(runner, loop)
            set_random_state(state)
        else:
            print_log(f'resume: {type(loop).__name__} is not an mmengine train loop; the random states in the '
                      'checkpoint are not restored', logger='current', level='WARNING')

    @staticmethod
    def _check_epoch_resume(runner, loop) -> None:
        loader = loop.dataloader
        if loop.iter != loop.epoch * len(loader):
            print_log(f'resume: the checkpoint was written at iteration {loop.iter}, inside epoch {loop.epoch + 1}; '
                      'mmengine restarts that epoch, so the run does not continue exactly', logger='current',
                      level='WARNING')
        if loader.num_workers > 0 and loader.persistent_workers:
            print_log('resume: train_dataloader.persistent_workers=True: the data workers kept their random streams '
                      'across the epochs before the interruption and restart them now, so augmentations differ from '
                      'an uninterrupted run (persistent_workers=False makes the resume exact)', logger='current',
                      level='WARNING')

    def before_val(self, runner) -> None:
        self._val_state = get_random_state()

    def after_val(self, runner) -> None:
        if self._val_state is not None:
            set_random_state(self._val_state)
            self._val_state = None
