"""tools/publish_model.py: weights-only .pth and .safetensors named by their content hash."""
import hashlib
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.runner import load_checkpoint

import densedet  # noqa: F401
from densedet.models.utils import read_checkpoint


def test_publish_strips_training_state_and_names_files_by_hash(repo_root, tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    optim = torch.optim.AdamW(model.parameters())
    model(torch.randn(1, 3, 8, 8)).sum().backward()
    optim.step()
    src = tmp_path / 'iter_8.pth'
    torch.save({'meta': {'iter': 8, 'seed': np.int64(3), 'dataset_meta': {'classes': ('a', 'b'),
                                                                           'palette': [np.array([1, 2, 3])]},
                         'cfg': 'model = dict(...)'},
                'state_dict': model.state_dict(), 'optimizer': optim.state_dict(),
                'message_hub': {'log_scalars': {'loss': HistoryBuffer([1.0], [1])}}}, src)
    out = subprocess.run([sys.executable, 'tools/publish_model.py', str(src), str(tmp_path / 'rel' / 'tiny')],
                         cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    paths = [line.split()[1] for line in out.stdout.splitlines() if line.startswith('wrote ')]
    assert [osp.splitext(p)[1] for p in paths] == ['.pth', '.safetensors']
    for p in paths:
        digest = hashlib.sha256(open(p, 'rb').read()).hexdigest()[:8]
        assert osp.basename(p) == f'tiny-{digest}{osp.splitext(p)[1]}'
    assert sorted(p.name for p in (tmp_path / 'rel').iterdir()) == sorted(osp.basename(p) for p in paths)

    published = torch.load(paths[0], weights_only=True)  # torch's own allow-list is enough
    assert sorted(published) == ['meta', 'state_dict']
    assert published['meta'] == {'iter': 8, 'seed': 3, 'dataset_meta': {'classes': ('a', 'b'),
                                                                         'palette': [[1, 2, 3]]}}
    for path in paths:
        weights = read_checkpoint(path)
        assert weights.keys() == model.state_dict().keys()
        assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    from safetensors import safe_open
    with safe_open(paths[1], 'pt') as f:
        assert json.loads(f.metadata()['meta'])['dataset_meta']['classes'] == ['a', 'b']
    fresh = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    load_checkpoint(fresh, paths[0], map_location='cpu', strict=True)
    assert torch.equal(fresh[0].weight, model[0].weight)
