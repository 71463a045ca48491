import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import densedet  # noqa: E402,F401

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope='session')
def repo_root():
    return ROOT


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """A small copy of the embedded ADE20K-layout data."""
    sys.path.insert(0, os.path.join(ROOT, 'tools', 'data'))
    from make_demo_ade20k import generate
    out = tmp_path_factory.mktemp('ade') / 'ADEChallengeData2016'
    return generate(str(out), num_train=8, num_val=2, height=96, width=128, seed=1)
