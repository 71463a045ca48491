"""ONNX export (densedet/apis/onnx_export.py, tools/deploy/): every exported segmentor family runs in
onnxruntime (CPU provider) and matches PyTorch on the same weights and input; tools/deploy/infer_onnx.py
segments images without torch. Needs requirements/deploy.txt (make test installs it)."""
import json
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from densedet.apis import export_onnx, init_model
from densedet.apis.onnx_export import MatrixAdaptiveAvgPool2d, _Preprocess, example_input, pad_pixel

ort = pytest.importorskip('onnxruntime')

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Logits of random-weight models reach ~10-100; float32 graphs reorder sums: 1e-3 absolute
# (measured differences: 5e-6 .. 1e-4).
ATOL = 1e-3


def _run(path, x):
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    return session.run(None, {'input': x.numpy()})


@pytest.mark.parametrize('config,shape', [
    ('configs/demo/upernet_rdnet_ade20k_demo.py', (128, 96)),
    ('configs/densenet/upernet_densenet121_ade20k.py', (64, 64)),
    ('configs/vovnet/upernet_vovnet39_ade20k.py', (64, 64)),
    ('configs/hardnet/upernet_hardnet68_ade20k.py', (64, 64)),
    ('configs/dpn/upernet_dpn92_ade20k.py', (64, 64)),
    ('configs/dla/upernet_dla34_ade20k.py', (64, 64)),
    ('configs/fcdensenet/fcdensenet56_camvid.py', (64, 96)),
    ('configs/fcdensenet/fcdensenet67_camvid.py', (64, 64)),
    ('configs/fcdensenet103_camvid.py', (64, 64)),
    ('configs/unetpp/unetpp_drive.py', (64, 64)),
    ('configs/demo/denseunet3d_msd-liver_demo.py', (16, 32, 32)),
])
def test_exported_segmentor_matches_pytorch(config, shape, tmp_path):
    torch.manual_seed(0)
    model = init_model(osp.join(ROOT, config))
    path = str(tmp_path / 'model.onnx')
    wrapper = export_onnx(model, path, shape)
    x = example_input(model, shape, seed=1)
    with torch.no_grad():
        expected = wrapper(x)
    (logits,) = _run(path, x)
    num_classes = model.cfg.model.get('num_classes') or model.cfg.model.decode_head.num_classes
    assert logits.shape == (1, num_classes, *shape)
    np.testing.assert_allclose(logits, expected.numpy(), rtol=0, atol=ATOL)
    if model.kind == 'seg':  # the graph holds the preprocessing: same logits as the segmentor on raw pixels
        from mmseg.structures import SegDataSample
        data = model.data_preprocessor(dict(inputs=[x[0]], data_samples=[SegDataSample()]), False)
        with torch.no_grad():
            direct = model.inference(data['inputs'], [dict(img_shape=shape, ori_shape=shape, pad_shape=shape)])
        if model.cfg.model.test_cfg.get('mode', 'whole') == 'whole':
            np.testing.assert_allclose(logits, direct.numpy(), rtol=0, atol=ATOL)


def test_dynamic_batch_export_takes_other_batch_sizes(tmp_path):
    torch.manual_seed(0)
    model = init_model(osp.join(ROOT, 'configs/demo/upernet_rdnet_ade20k_demo.py'))
    path = str(tmp_path / 'dynamic.onnx')
    wrapper = export_onnx(model, path, (96, 128), dynamic_batch=True)
    for batch in (1, 3):
        x = torch.rand(batch, 3, 96, 128) * 255
        with torch.no_grad():
            expected = wrapper(x)
        (logits,) = _run(path, x)
        assert logits.shape == (batch, 150, 96, 128)
        np.testing.assert_allclose(logits, expected.numpy(), rtol=0, atol=ATOL)


def test_detector_exports_backbone_and_neck(tmp_path):
    torch.manual_seed(0)
    model = init_model(osp.join(ROOT, 'configs/demo/mask-rcnn_rdnet_coco_demo.py'))
    path = str(tmp_path / 'features.onnx')
    wrapper = export_onnx(model, path, (128, 160))
    x = torch.rand(1, 3, 128, 160) * 255
    with torch.no_grad():
        expected = wrapper(x)
    outs = _run(path, x)
    assert [o.shape for o in outs] == [tuple(e.shape) for e in expected] and len(outs) == 5
    from mmdet.structures import DetDataSample
    data = model.data_preprocessor(dict(inputs=[x[0]], data_samples=[DetDataSample()]), False)
    with torch.no_grad():
        direct = model.extract_feat(data['inputs'])  # mmdet's own preprocessing
    for o, e, d in zip(outs, expected, direct):
        np.testing.assert_allclose(o, e.numpy(), rtol=0, atol=ATOL)
        np.testing.assert_allclose(o, d.numpy(), rtol=0, atol=ATOL)
    # infer_onnx.py segments with a segmentor's logits: features are one line, not an IndexError
    from scripts import load_script
    with pytest.raises(SystemExit) as exit_info:
        load_script('tools/deploy/infer_onnx.py').main([path, str(tmp_path)])
    assert str(exit_info.value.code) == (
        f"infer_onnx.py: error: {path} has outputs ['feat0', 'feat1', 'feat2', 'feat3', 'feat4'], not a "
        "segmentor's logits: a detector export holds only backbone + neck features (export_onnx.py), which this "
        'script cannot turn into predictions')


def test_cli_export_then_onnx_inference_without_torch(repo_root, demo_data, tmp_path):
    model_path = tmp_path / 'demo.onnx'
    out = subprocess.run([sys.executable, 'tools/deploy/export_onnx.py', 'configs/demo/upernet_rdnet_ade20k_demo.py',
                          '--shape', '128', '160', '--out', str(model_path), '--atol', str(ATOL)],
                         cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'onnxruntime vs PyTorch: max abs difference' in out.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ['demo.onnx']  # self-contained: no stale demo.onnx.data
    images = osp.join(demo_data, 'images', 'validation')
    # torch and mmcv made unimportable: the script must not need them.
    blocker = tmp_path / 'blocker'
    blocker.mkdir()
    for name in ('torch', 'mmcv', 'mmengine', 'densedet'):
        (blocker / f'{name}.py').write_text(f'raise ImportError("{name} must not be imported")\n')
    env = dict(__import__('os').environ, PYTHONPATH=str(blocker))
    out = subprocess.run([sys.executable, 'tools/deploy/infer_onnx.py', str(model_path), images, '--out-dir',
                          str(tmp_path / 'out')], cwd=repo_root, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert '2 images in' in out.stdout
    from PIL import Image
    for name in ('ADE_demo_v_00000', 'ADE_demo_v_00001'):
        label = Image.open(tmp_path / 'out' / 'pred' / f'{name}.png')
        assert label.mode == 'P' and label.size == (128, 96) and np.asarray(label).max() < 150
        assert (tmp_path / 'out' / 'overlays' / f'{name}.png').exists()


@pytest.mark.parametrize('size', [(7, 9), (13, 5), (6, 6), (1, 1), (24, 40), (3, 11)])
@pytest.mark.parametrize('output_size', [1, 2, 3, 6, (2, 5), (None, 3)])
def test_matrix_adaptive_pooling_equals_pytorch(size, output_size):
    x = torch.randn(2, 4, *size)
    expected = torch.nn.functional.adaptive_avg_pool2d(x, output_size)
    torch.testing.assert_close(MatrixAdaptiveAvgPool2d(output_size)(x), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize('config', [
    'configs/demo/upernet_rdnet_ade20k_demo.py',  # UperNet's PPM: adaptive pooling of a free-size map
    'configs/fcdensenet/fcdensenet56_camvid.py',  # centre crops after the transposed convs
    'configs/unetpp/unetpp_drive.py',
])
def test_dynamic_size_export_runs_at_other_sizes(config, tmp_path):
    torch.manual_seed(0)
    model = init_model(osp.join(ROOT, config))
    path = str(tmp_path / 'free.onnx')
    wrapper = export_onnx(model, path, (64, 96), dynamic_size=True)
    num_classes = model.cfg.model.decode_head.num_classes
    for shape in ((64, 96), (96, 64), (128, 160), (32, 32)):
        x = example_input(model, shape, seed=2)
        with torch.no_grad():
            expected = wrapper(x)
        (logits,) = _run(path, x)
        assert logits.shape == (1, num_classes, *shape)
        np.testing.assert_allclose(logits, expected.numpy(), rtol=0, atol=ATOL)


def test_dynamic_size_rejects_volumes_and_sizes_off_the_divisor(tmp_path):
    volume = init_model(osp.join(ROOT, 'configs/demo/denseunet3d_msd-liver_demo.py'))
    with pytest.raises(ValueError, match='volume models'):
        export_onnx(volume, str(tmp_path / 'v.onnx'), (16, 32, 32), dynamic_size=True)
    image = init_model(osp.join(ROOT, 'configs/unetpp/unetpp_drive.py'))
    with pytest.raises(ValueError, match='multiple of size_divisor=32'):
        export_onnx(image, str(tmp_path / 'i.onnx'), (64, 100), dynamic_size=True)


def test_cli_dynamic_size_export_segments_images_at_their_own_size(repo_root, tmp_path):
    model_path = tmp_path / 'free.onnx'
    out = subprocess.run([sys.executable, 'tools/deploy/export_onnx.py', 'configs/fcdensenet/fcdensenet56_camvid.py',
                          '--shape', '64', '96', '--dynamic-size', '--out', str(model_path), '--atol', str(ATOL)],
                         cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert '(input 64x96 and 96x160)' in out.stdout
    session = ort.InferenceSession(str(model_path), providers=['CPUExecutionProvider'])
    meta = {k: json.loads(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}
    model = init_model(osp.join(ROOT, 'configs/fcdensenet/fcdensenet56_camvid.py'))
    assert meta['size_divisor'] == 32 and meta['pad_pixel'] == pytest.approx(pad_pixel(model))
    # the pixel the graph normalises to zero
    pre = _Preprocess(model.data_preprocessor)
    pixel = torch.tensor(meta['pad_pixel']).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    torch.testing.assert_close(pre(pixel), torch.zeros(1, 3, 2, 2), rtol=0, atol=1e-5)
    rng = np.random.RandomState(0)
    images = tmp_path / 'images'
    images.mkdir()
    sizes = {'odd': (70, 101), 'exact': (64, 96)}
    for name, (h, w) in sizes.items():
        cv2.imwrite(str(images / f'{name}.png'), rng.randint(0, 256, (h, w, 3), np.uint8))
    out = subprocess.run([sys.executable, 'tools/deploy/infer_onnx.py', str(model_path), str(images), '--out-dir',
                          str(tmp_path / 'out')], cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    from PIL import Image
    for name, (h, w) in sizes.items():
        img = cv2.imread(str(images / f'{name}.png')).astype(np.float32)
        padded = np.empty((-(-h // 32) * 32, -(-w // 32) * 32, 3), np.float32)
        padded[...] = meta['pad_pixel']
        padded[:h, :w] = img
        (logits,) = session.run(None, {'input': padded.transpose(2, 0, 1)[None]})
        label = np.asarray(Image.open(tmp_path / 'out' / 'pred' / f'{name}.png'))
        np.testing.assert_array_equal(label, logits[0].argmax(0)[:h, :w])
