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
