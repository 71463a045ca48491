"""Fixes for the pinned stack (mmengine 0.10.7 on torch 2.14.1, mmcv 2.1.0; see
requirements/constraints.txt), applied on ``import densedet``.

Each fix is small, idempotent and tested in ``tests/test_compat.py``, which also runs the unpatched
function it replaces (kept in :data:`ORIGINALS`) and fails once a pinned version no longer needs the
fix (the upgrade that makes it obsolete):

* [mmengine 0.10.7 + torch >= 2.6] ``torch.load`` defaults to ``weights_only=True`` since torch 2.6; mmengine 0.10.7
  does not pass the argument, so runner checkpoints (which pickle numpy scalars
  and ``HistoryBuffer`` objects next to the weights) no longer load: ``--resume``
  and ``load_from`` break; its http(s) loader (also behind ``torchvision://`` and
  ``open-mmlab://``) goes through ``torch.hub``, which unpickles with full pickle. Both are
  re-registered to load through :mod:`densedet.engine.checkpoint`: ``weights_only=True`` with
  an allow-list of what checkpoints contain, no pickle code execution. Partial loading
  (``load_from`` for fine-tuning, ``init_cfg=dict(type='Pretrained')``) reports what did not fit
  in one line instead of mmengine's listing of every missing / unexpected key (26 KB for a
  checkpoint of another model): a choice of densedet's, not a version fix.
* [mmengine 0.10.7, CPU-only machines] ``--launcher pytorch`` without CUDA: mmengine calls ``torch.cuda.set_device``,
  defaults to NCCL and gives DDP ``device_ids``. Without a CUDA device the process
  group uses gloo and DDP gets ``device_ids=None``; with CUDA nothing changes.
* [mmengine 0.10.7] Checkpoints are written atomically: the runner's ``save_checkpoint`` writes local
  files to ``NAME.tmp`` and renames, so a run killed while saving never leaves a
  truncated ``iter_N.pth`` for ``--resume`` to trip over.
* [mmengine 0.10.7, CPU-only machines] ``AmpOptimWrapper`` asserts CUDA/NPU/MLU/MUSA. On a CPU-only machine it now
  fails with one clear message that points to :class:`densedet.engine.CPUAmpOptimWrapper`
  (bf16 autocast), which ``tools/train.py --amp`` selects by itself.
"""
import os

from densedet.errors import UnsupportedError

_APPLIED = False
#: the functions the fixes replaced, by name (tests/test_compat.py checks they still need fixing)
ORIGINALS = {}


def _has_accelerator() -> bool:
    from mmengine.device import is_cuda_available, is_mlu_available, is_musa_available, is_npu_available
    return is_cuda_available() or is_npu_available() or is_mlu_available() or is_musa_available()


def _fix_checkpoint_loading():
    from mmengine.dist import get_dist_info
    from mmengine.runner import checkpoint as checkpoint_module
    from mmengine.runner.checkpoint import CheckpointLoader

    ORIGINALS.setdefault('load_from_local', CheckpointLoader._schemes[''])

    @CheckpointLoader.register_scheme(prefixes='', force=True)
    def load_from_local(filename, map_location):
        from densedet.engine.checkpoint import load_checkpoint_file
        return load_checkpoint_file(filename, map_location)

    @CheckpointLoader.register_scheme(prefixes=('http://', 'https://'), force=True)
    def load_from_http(filename, map_location=None, model_dir=None, progress=os.isatty(0)):
        import torch.distributed as torch_dist
        import torch.hub

        from densedet.engine.checkpoint import safe_load
        rank, world_size = get_dist_info()  # rank 0 downloads first, as mmengine does

        def load():
            return safe_load(torch.hub.load_state_dict_from_url, filename, model_dir=model_dir,
                             map_location=map_location, progress=progress)

        checkpoint = load() if rank == 0 else None
        if world_size > 1:
            torch_dist.barrier()
            if rank > 0:
                checkpoint = load()
        return checkpoint

    checkpoint_module.load_from_http = load_from_http  # torchvision:// and open-mmlab:// call it by name
    if not getattr(checkpoint_module.load_state_dict, '_densedet_summary', False):
        from densedet.engine.checkpoint import partial_load_state_dict
        checkpoint_module.load_state_dict = partial_load_state_dict(checkpoint_module.load_state_dict)


def _fix_atomic_checkpoint_save():
    from mmengine.runner import runner as runner_module

    original_save = runner_module.save_checkpoint
    if getattr(original_save, '_densedet_atomic', False):
        return
    ORIGINALS['save_checkpoint'] = original_save

    def save_checkpoint(checkpoint, filename, *args, **kwargs):
        if '://' in str(filename):  # remote backends have their own semantics
            return original_save(checkpoint, filename, *args, **kwargs)
        tmp = f'{filename}.tmp'
        original_save(checkpoint, tmp, *args, **kwargs)
        os.replace(tmp, filename)

    save_checkpoint._densedet_atomic = True
    runner_module.save_checkpoint = save_checkpoint


def _fix_cpu_distributed():
    import torch.distributed as torch_dist
    from mmengine.dist import utils as dist_utils
    from mmengine.model.wrappers import distributed as mm_ddp

    original_init_dist = ORIGINALS.setdefault('_init_dist_pytorch', dist_utils._init_dist_pytorch)

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if _has_accelerator():
            return original_init_dist(backend, init_backend=init_backend, **kwargs)
        if backend == 'nccl':  # NCCL needs CUDA; gloo is the CPU backend
            backend = 'gloo'
        torch_dist.init_process_group(backend=backend, **kwargs)

    dist_utils._init_dist_pytorch = _init_dist_pytorch

    ddp_cls = mm_ddp.MMDistributedDataParallel
    original_ddp_init = ddp_cls.__init__

    def __init__(self, module, detect_anomalous_params=False, **kwargs):
        params = list(module.parameters())
        if params and params[0].device.type == 'cpu':
            from mmengine.model import revert_sync_batchnorm
            kwargs['device_ids'] = None  # DDP requires None for CPU modules
            kwargs.pop('output_device', None)
            module = revert_sync_batchnorm(module)  # SyncBatchNorm runs on GPUs only
        original_ddp_init(self, module, detect_anomalous_params=detect_anomalous_params, **kwargs)

    ddp_cls.__init__ = __init__


def _fix_amp_on_cpu():
    from mmengine.optim import AmpOptimWrapper

    original_init = ORIGINALS.setdefault('AmpOptimWrapper.__init__', AmpOptimWrapper.__init__)

    def __init__(self, *args, **kwargs):
        if not _has_accelerator():
            raise UnsupportedError(
                'AmpOptimWrapper (fp16 with a loss scaler) needs a CUDA/NPU/MLU/MUSA device and none is '
                "available. On CPU use optim_wrapper=dict(type='CPUAmpOptimWrapper', ...) "
                '(bfloat16 autocast, registered by densedet); tools/train.py --amp picks it automatically.')
        original_init(self, *args, **kwargs)

    AmpOptimWrapper.__init__ = __init__


def apply():
    """Applies every fix once."""
    global _APPLIED
    if _APPLIED or os.environ.get('DENSEDET_NO_COMPAT') == '1':
        return
    _fix_checkpoint_loading()
    _fix_atomic_checkpoint_save()
    _fix_cpu_distributed()
    _fix_amp_on_cpu()
    _APPLIED = True
