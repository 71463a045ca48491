"""Tools print densedet's own bad-input errors as one line (exit 1), the traceback behind --debug /
DENSEDET_DEBUG=1; unexpected exceptions keep their traceback (densedet/apis/cli.py run_tool)."""
import os
import subprocess
import sys

import pytest

from densedet.apis.cli import run_tool
from densedet.fileio import read_nifti


def _tool(repo_root, *args, env=None):
    return subprocess.run([sys.executable, *args], cwd=repo_root, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, **(env or {})))


def test_tools_print_one_line_for_bad_input_and_the_traceback_with_debug(repo_root):
    args = ['tools/train.py', 'configs/demo/upernet_rdnet_ade20k_demo.py', '--cfg-options',
            'train_dataloader.dataset.data_root=/no/such/ade']
    out = _tool(repo_root, *args)
    assert out.returncode == 1 and 'Traceback' not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        "train.py: error: train_dataloader.dataset.data_root: directory '/no/such/ade' does not exist (prepare the "
        'dataset there or override it with --cfg-options) (--debug for the traceback)')
    out = _tool(repo_root, *args, env={'DENSEDET_DEBUG': '1'})  # --debug: test below
    assert out.returncode == 1 and 'Traceback' in out.stderr and 'FileNotFoundError' in out.stderr
    out = _tool(repo_root, 'tools/data/plan_volumes.py', '--data-root', '/no/such/task')
    assert out.returncode == 1 and 'Traceback' not in out.stderr
    assert "data_root '/no/such/task' does not exist" in out.stderr


def test_run_tool_keeps_the_traceback_of_unexpected_errors(tmp_path, capsys):
    def broken(argv):
        return int('not a number')  # a ValueError, but not one densedet raised

    with pytest.raises(ValueError, match='invalid literal'):
        run_tool(broken, [])

    def bad_input(argv):
        read_nifti(str(tmp_path / 'missing.nii.gz'))

    with pytest.raises(SystemExit) as exit_info:
        run_tool(bad_input, [])
    assert exit_info.value.code == 1 and 'image file not found' in capsys.readouterr().err
    with pytest.raises(FileNotFoundError):
        run_tool(bad_input, ['--debug'])
