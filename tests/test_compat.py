import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.registry import OPTIM_WRAPPERS
from mmengine.runner.checkpoint import _load_checkpoint

import densedet  # noqa: F401


def test_runner_style_checkpoint_loads_without_env(tmp_path, monkeypatch):
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    ckpt = {'meta': {'seed': np.int64(3), 'iter': 5, 'buffer': HistoryBuffer([1.0, 2.0], [1, 1])},
            'state_dict': {'w': torch.ones(2)}, 'message_hub': {'x': np.float64(0.5)}}
    path = tmp_path / 'iter_5.pth'
    torch.save(ckpt, path)
    with pytest.raises(Exception):  # plain torch.load (weights_only default) refuses it
        torch.load(path)
    loaded = _load_checkpoint(str(path), map_location='cpu')
    assert loaded['meta']['seed'] == 3 and torch.equal(loaded['state_dict']['w'], torch.ones(2))


def test_checkpoints_are_saved_atomically(tmp_path, monkeypatch):
    from mmengine.runner import runner as runner_module
    target = tmp_path / 'iter_1.pth'
    runner_module.save_checkpoint({'a': torch.zeros(1)}, str(target))
    assert target.exists() and not (tmp_path / 'iter_1.pth.tmp').exists()

    def boom(obj, f, *a, **k):
        raise KeyboardInterrupt  # a kill in the middle of torch.save

    target2 = tmp_path / 'iter_2.pth'
    monkeypatch.setattr(torch, 'save', boom)
    with pytest.raises(KeyboardInterrupt):
        runner_module.save_checkpoint({'a': torch.zeros(1)}, str(target2))
    assert not target2.exists()  # never a truncated file under the final name


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_amp_optim_wrapper_on_cpu_gives_one_clear_error():
    model = nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match='CPUAmpOptimWrapper'):
        OPTIM_WRAPPERS.build(dict(type='AmpOptimWrapper', optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))


def test_cpu_amp_wrapper_autocasts_to_bfloat16():
    model = nn.Linear(4, 4)
    wrapper = OPTIM_WRAPPERS.build(dict(type='CPUAmpOptimWrapper',
                                        optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    with wrapper.optim_context(model):
        out = model(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().sum())
    assert model.weight.dtype == torch.float32


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_cpu_ddp_uses_gloo_and_no_device_ids(monkeypatch, tmp_path):
    import torch.distributed as dist
    from mmengine.dist import init_dist
    from mmengine.model import MMDistributedDataParallel
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', '29531')
    init_dist('pytorch', backend='nccl')
    try:
        assert dist.get_backend() == 'gloo'
        model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.SyncBatchNorm(2))
        ddp = MMDistributedDataParallel(module=model, device_ids=[0], broadcast_buffers=False)
        assert ddp.device_ids is None
        assert not any(isinstance(m, nn.SyncBatchNorm) for m in ddp.module.modules())
        ddp(torch.randn(2, 1, 3, 3)).sum().backward()
    finally:
        dist.destroy_process_group()


# Each fix of densedet/compat.py replaces a function of the pinned versions that still fails without
# it. When one of these tests fails, an upgrade made that fix obsolete: drop the fix and its test.

def test_mmengines_local_loader_still_refuses_runner_checkpoints(tmp_path, monkeypatch):
    import pickle

    from densedet.compat import ORIGINALS
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    path = tmp_path / 'iter_5.pth'
    torch.save({'meta': {'seed': np.int64(3)}, 'message_hub': {'b': HistoryBuffer([1.0], [1])},
                'state_dict': {'w': torch.ones(2)}}, path)
    with pytest.raises(pickle.UnpicklingError, match='Weights only load failed'):
        ORIGINALS['load_from_local'](str(path), 'cpu')


def test_mmengines_save_checkpoint_still_writes_under_the_final_name(tmp_path, monkeypatch):
    # a kill during that write leaves a truncated iter_N.pth, which --resume then picks
    from mmengine.fileio.backends import LocalBackend

    from densedet.compat import ORIGINALS
    written = []
    monkeypatch.setattr(LocalBackend, 'put', lambda self, obj, filepath: written.append(str(filepath)))
    target = tmp_path / 'iter_3.pth'
    ORIGINALS['save_checkpoint']({'a': torch.zeros(1)}, str(target))
    assert written == [str(target)]


@pytest.mark.skipif(torch.cuda.is_available(), reason='the fix matters on machines without CUDA')
def test_mmengines_pytorch_launcher_still_needs_cuda(monkeypatch):
    from densedet.compat import ORIGINALS
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('LOCAL_RANK', '0')
    with pytest.raises((RuntimeError, AssertionError)):  # torch.cuda.set_device without a device
        ORIGINALS['_init_dist_pytorch']('gloo')


@pytest.mark.skipif(torch.cuda.is_available(), reason='the fix matters on machines without CUDA')
def test_mmengines_amp_optim_wrapper_still_asserts_an_accelerator():
    from mmengine.optim import AmpOptimWrapper

    from densedet.compat import ORIGINALS
    wrapper = AmpOptimWrapper.__new__(AmpOptimWrapper)
    with pytest.raises(AssertionError, match='only available training on gpu'):
        ORIGINALS['AmpOptimWrapper.__init__'](wrapper, optimizer=torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=1))
