"""Checkpoints load without pickle code execution (densedet/engine/checkpoint.py, wired into
mmengine's loaders by densedet/compat.py): what runner checkpoints contain loads; a pickle that
would run code is refused with one error naming the file and the global, and its payload never
runs; DENSEDET_TRUST_CHECKPOINTS=1 opts in to full pickle."""
import functools
import http.server
import threading

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner.checkpoint import _load_checkpoint

import densedet  # noqa: F401  (registers the loaders)
from densedet.engine.checkpoint import TRUST_ENV, UnsafeCheckpointError
from densedet.models.utils import read_checkpoint


class Payload:
    """Unpickling this writes a file: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").write("ran")',)


class AttributeWalk:
    """getattr on an allowed class, but not one of its statistics methods."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


def runner_checkpoint():
    return {'meta': {'seed': np.int64(3), 'iter': 5, 'dataset_meta': {'classes': ('a', 'b')}},
            'state_dict': {'w': torch.ones(2)},
            'message_hub': {'log_scalars': {'loss': HistoryBuffer([1.0, 2.0], [1, 1])},
                            'runtime_info': {'arr': np.arange(3, dtype=np.float32), 'x': np.float64(0.5)}}}


@pytest.fixture
def no_trust(monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)


def test_runner_checkpoint_contents_load(tmp_path, no_trust):
    path = tmp_path / 'iter_5.pth'
    torch.save(runner_checkpoint(), path)
    loaded = _load_checkpoint(str(path), map_location='cpu')
    assert loaded['meta']['seed'] == 3
    assert loaded['message_hub']['log_scalars']['loss'].mean() == 1.5
    assert loaded['message_hub']['runtime_info']['arr'].tolist() == [0, 1, 2]
    assert read_checkpoint(str(path))['w'].tolist() == [1, 1]


@pytest.mark.parametrize('load', [lambda p: _load_checkpoint(p, map_location='cpu'), read_checkpoint],
                         ids=['mmengine', 'read_checkpoint'])
def test_code_carrying_pickle_is_refused_and_never_runs(tmp_path, no_trust, load):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'meta': Payload(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match=rf"{path}: refused.*`exec`.*{TRUST_ENV}=1"):
        load(str(path))
    assert not marker.exists()


def test_getattr_beyond_history_buffer_statistics_is_refused(tmp_path, no_trust):
    path = tmp_path / 'walk.pth'
    torch.save({'meta': AttributeWalk()}, path)
    with pytest.raises(UnsafeCheckpointError, match=r'builtins.getattr'):
        _load_checkpoint(str(path), map_location='cpu')


def test_trusted_checkpoints_load_with_full_pickle(tmp_path, monkeypatch):
    marker = tmp_path / 'ran'
    path = tmp_path / 'trusted.pth'
    torch.save({'meta': Payload(marker)}, path)
    monkeypatch.setenv(TRUST_ENV, '1')
    _load_checkpoint(str(path), map_location='cpu')
    assert marker.read_text() == 'ran'


def test_http_checkpoints_load_through_the_allow_list(tmp_path, no_trust, monkeypatch):
    served = tmp_path / 'served'
    served.mkdir()
    torch.save(runner_checkpoint(), served / 'good.pth')
    torch.save({'meta': Payload(tmp_path / 'pwned')}, served / 'evil.pth')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))  # the download cache
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f'http://127.0.0.1:{server.server_address[1]}'
        assert _load_checkpoint(f'{url}/good.pth', map_location='cpu')['meta']['seed'] == 3
        with pytest.raises(UnsafeCheckpointError, match='evil.pth: refused'):
            _load_checkpoint(f'{url}/evil.pth', map_location='cpu')
    finally:
        server.shutdown()
        server.server_close()
    assert not (tmp_path / 'pwned').exists()


def test_runner_checkpoint_loads_in_a_fresh_process(tmp_path, no_trust):
    # HistoryBuffer registers its statistics methods in __init__: a process that has created none
    # (tools/test.py, --resume) must still accept getattr(HistoryBuffer, 'min') from the pickle.
    import subprocess
    import sys
    path = tmp_path / 'iter_5.pth'
    torch.save(runner_checkpoint(), path)
    code = ('import densedet; from mmengine.runner.checkpoint import _load_checkpoint; '
            f'print(_load_checkpoint({str(path)!r}, map_location="cpu")["message_hub"]["log_scalars"]["loss"].max())')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == '2.0'


class ToyModel(BaseModel):
    """One linear layer as an mmengine model (runner and test-time-augmentation tests)."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.net(inputs)
        return {'loss': out.pow(2).mean()} if mode == 'loss' else out


def _runner(work_dir, by_epoch):
    from mmengine.runner import Runner
    data = [dict(inputs=torch.randn(2)) for _ in range(4)]
    loop = dict(by_epoch=True, max_epochs=1) if by_epoch else dict(by_epoch=False, max_iters=1)
    return Runner(model=ToyModel(), work_dir=str(work_dir), experiment_name=f'toy_{by_epoch}',
                  train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=False),
                                        batch_size=4, collate_fn=dict(type='default_collate')),
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)), train_cfg=loop,
                  default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=by_epoch)),
                  default_scope='mmengine')


@pytest.mark.parametrize('by_epoch', [False, True], ids=['iteration-loop', 'epoch-loop'])
def test_runner_checkpoints_saved_at_their_first_step_load(tmp_path, no_trust, by_epoch):
    runner = _runner(tmp_path, by_epoch)
    runner.train()
    loaded = _load_checkpoint(str(tmp_path / ('epoch_1.pth' if by_epoch else 'iter_1.pth')), map_location='cpu')
    assert loaded['meta']['epoch' if by_epoch else 'iter'] == 1
    assert loaded['message_hub']['log_scalars']['train/loss'].current() > 0
    assert 'net.weight' in loaded['state_dict']


def test_numpy_values_of_every_kind_in_meta_load(tmp_path, no_trust, monkeypatch):
    meta = {f'{np.dtype(t).name}': np.dtype(t).type(1) for t in
            (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
             np.float16, np.float32, np.float64, np.complex64, np.bool_)}
    meta.update(dtypes=[np.dtype('float32'), np.dtype('int64'), np.dtype('bool')], empty=np.zeros(0, np.float32),
                empty_int=np.array([], np.int64), scalars_array=np.arange(4).reshape(2, 2), flag=np.bool_(False),
                history=HistoryBuffer())
    path = tmp_path / 'meta.pth'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'meta': meta}, path)
    loaded = _load_checkpoint(str(path), map_location='cpu')['meta']
    for key, value in meta.items():
        if isinstance(value, np.ndarray):
            assert loaded[key].dtype == value.dtype and loaded[key].tolist() == value.tolist(), key
        elif key != 'history':
            assert loaded[key] == value and type(loaded[key]) is type(value), key
    assert len(loaded['history']._log_history) == 0
    # empty arrays (an empty HistoryBuffer's, 'empty' above) pickle their data as a call of
    # builtins.bytes (protocol 2): without bytes in the allow-list this checkpoint is refused
    from densedet.engine import checkpoint as checkpoint_module
    allowed = checkpoint_module.checkpoint_safe_globals()
    monkeypatch.setattr(checkpoint_module, 'checkpoint_safe_globals', lambda: [g for g in allowed if g is not bytes])
    with pytest.raises(UnsafeCheckpointError, match='needs `bytes`'):
        _load_checkpoint(str(path), map_location='cpu')


def test_bytes_in_the_allow_list_constructs_data_only(tmp_path, no_trust):
    path = tmp_path / 'bytes.pth'
    torch.save({'meta': {'raw': b'', 'more': b'\x00\x01'}}, path)
    assert _load_checkpoint(str(path), map_location='cpu')['meta'] == {'raw': b'', 'more': b'\x00\x01'}


def test_strict_loading_reports_one_line_and_loads_a_fitting_checkpoint(tmp_path):
    from densedet.engine.checkpoint import load_model_checkpoint
    from densedet.errors import BadCheckpointError
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Conv2d(8, 2, 1))
    path = tmp_path / 'other.pth'
    torch.save({'state_dict': other.state_dict(), 'meta': {'experiment_name': 'other_cfg_20260101_120000'}}, path)
    with pytest.raises(BadCheckpointError) as error:
        load_model_checkpoint(model, str(path), config='mine.py')
    message = str(error.value)
    assert message == (f'{path} does not fit the model of mine.py: 2 unexpected (2.weight, 2.bias), 6 of another '
                       'shape (0.weight: (8, 3, 3, 3) in the checkpoint, (4, 3, 3, 3) in the model and 5 more); it '
                       "was trained with config 'other_cfg'")
    # a fitting checkpoint (DDP's 'module.' prefix, no num_batches_tracked) loads every tensor
    state = {f'module.{k}': v + 1 for k, v in model.state_dict().items() if 'num_batches' not in k}
    torch.save({'state_dict': state}, path)
    load_model_checkpoint(model, str(path))
    assert torch.equal(model[0].weight, state['module.0.weight'])


def test_partial_loading_logs_one_summary_line(tmp_path, capsys):
    from mmengine.logging import MMLogger
    from mmengine.runner.checkpoint import load_checkpoint
    MMLogger.get_instance('partial_test', log_level='INFO')
    model = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(50)])
    other = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(20)], torch.nn.Linear(4, 2))
    path = tmp_path / 'other.pth'
    torch.save({'state_dict': other.state_dict()}, path)
    load_checkpoint(model, str(path), map_location='cpu')  # load_from / init_cfg: partial is allowed
    out = capsys.readouterr()
    lines = [line for line in (out.out + out.err).splitlines() if 'checkpoint' in line and 'missing' in line]
    assert len(lines) == 1 and len(lines[0]) < 400, out.out + out.err
    assert ('loaded the checkpoint partially into Sequential: 58 missing (21.weight, 21.bias, 22.weight, ...), '
            '2 of another shape (20.weight: (2, 4) in the checkpoint, (4, 4) in the model and 1 more)') in lines[0]
    assert torch.equal(model[3].weight, other[3].weight)  # what fits is loaded


def test_safetensors_files_load_with_their_meta(tmp_path):
    from safetensors.torch import save_file

    from densedet.engine.checkpoint import load_checkpoint_file
    path = str(tmp_path / 'model.safetensors')
    save_file({'w': torch.arange(3.)}, path, metadata={'format': 'pt', 'meta': '{"dataset_meta": {"classes": ["a"]}}'})
    loaded = load_checkpoint_file(path)
    assert loaded['state_dict']['w'].tolist() == [0, 1, 2] and loaded['meta'] == {'dataset_meta': {'classes': ['a']}}
    assert _load_checkpoint(path, map_location='cpu')['meta']['dataset_meta']['classes'] == ['a']


def test_models_under_test_time_augmentation_load_through_their_module(tmp_path, capsys):
    # tools/test.py --tta runs a BaseTTAModel whose keys are 'module.<name>'; checkpoints hold '<name>'
    from mmengine.model import BaseTTAModel
    from mmengine.runner.checkpoint import load_checkpoint

    from densedet.engine.checkpoint import load_model_checkpoint

    class TTA(BaseTTAModel):
        def merge_preds(self, data_samples_list):
            return data_samples_list

    model = ToyModel()
    tta = TTA(module=model)
    path = tmp_path / 'net.pth'
    torch.save({'state_dict': {k: v + 1 for k, v in model.state_dict().items()}}, path)
    expected = model.net.weight.detach() + 1
    load_model_checkpoint(tta, str(path))  # strict: it fits
    assert torch.equal(model.net.weight, expected)
    load_checkpoint(tta, str(path), map_location='cpu')  # partial path: fits, so nothing reported
    assert 'partially' not in capsys.readouterr().out


def test_a_bare_state_dict_predicts_through_mmsegs_init_model(tmp_path):
    # mmseg's init_model reads checkpoint['meta'] unconditionally: converted weights have none
    from densedet.apis import init_model
    config = 'configs/demo/upernet_rdnet_ade20k_demo.py'
    model = init_model(config)
    path = tmp_path / 'bare.pth'
    torch.save(model.state_dict(), path)
    loaded = init_model(config, str(path))
    key = 'decode_head.conv_seg.weight'
    assert torch.equal(loaded.state_dict()[key], model.state_dict()[key])
