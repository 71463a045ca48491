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
    # both files are readable like any other file the user writes (safetensors wrote a private 0600 temp)
    import os
    umask = os.umask(0)
    os.umask(umask)
    assert {oct(os.stat(p).st_mode & 0o777) for p in paths} == {oct(0o666 & ~umask)}


def test_published_safetensors_predict_with_tools_infer(repo_root, demo_data, tmp_path):
    from densedet.apis import init_model
    config = 'configs/demo/upernet_rdnet_ade20k_demo.py'
    torch.manual_seed(0)
    model = init_model(osp.join(repo_root, config))
    src = tmp_path / 'iter_1.pth'
    classes = tuple(f'c{i}' for i in range(150))
    palette = [[i, 255 - i, i // 2] for i in range(150)]
    torch.save({'state_dict': model.state_dict(), 'meta': {'dataset_meta': {'classes': classes, 'palette': palette}}},
               src)
    out = subprocess.run([sys.executable, 'tools/publish_model.py', str(src), str(tmp_path / 'rel' / 'demo')],
                         cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    safetensors = next(line.split()[1] for line in out.stdout.splitlines() if line.endswith('MiB)')
                       and '.safetensors' in line)
    image = osp.join(demo_data, 'images', 'validation', 'ADE_demo_v_00000.jpg')
    out = subprocess.run([sys.executable, 'tools/infer.py', config, safetensors, image, '--out-dir',
                          str(tmp_path / 'st')], cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    from PIL import Image

    from densedet.apis import inference
    written = np.asarray(Image.open(tmp_path / 'st' / 'pred' / 'ADE_demo_v_00000.png'))
    from_pth = inference(init_model(osp.join(repo_root, config), str(src)), image).pred_sem_seg.data[0].numpy()
    assert np.array_equal(written, from_pth)  # the same weights through either file
    assert init_model(osp.join(repo_root, config), safetensors).dataset_meta['classes'] == list(classes)
