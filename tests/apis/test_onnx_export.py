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

from scripts import load_script

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


def test_dynamic_size_volume_export_and_sizes_off_the_divisor(tmp_path):
    torch.manual_seed(0)
    volume = init_model(osp.join(ROOT, 'configs/demo/denseunet3d_msd-liver_demo.py'))  # stride (4, 32, 32)
    with pytest.raises(ValueError, match=r'must be at least twice size_divisor=4x32x32'):
        export_onnx(volume, str(tmp_path / 'v.onnx'), (16, 32, 32), dynamic_size=True)
    with pytest.raises(ValueError, match=r'multiple of size_divisor=4x32x32'):
        export_onnx(volume, str(tmp_path / 'v.onnx'), (16, 64, 48), dynamic_size=True)
    path = str(tmp_path / 'v.onnx')
    wrapper = export_onnx(volume, path, (8, 64, 64), dynamic_size=True)
    for shape in ((8, 64, 64), (12, 32, 96)):  # D, H, W any multiples of the stride
        x = example_input(volume, shape, seed=3)
        with torch.no_grad():
            expected = wrapper(x)
        np.testing.assert_allclose(_run(path, x)[0], expected.numpy(), rtol=0, atol=ATOL)
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


# --- volumes: the whole pipeline from the ONNX file alone -----------------------------------------
def test_numpy_pipeline_pieces_equal_pytorch_and_monai():
    from monai.data.utils import compute_importance_map, dense_patch_slices

    from densedet.models.utils import resize_logits
    onnx_volume = load_script('tools/deploy/onnx_volume.py')
    x = np.random.default_rng(0).normal(size=(3, 7, 20, 13)).astype(np.float32)
    for shape in ((11, 9, 13), (4, 33, 5), (7, 20, 13)):
        expected = resize_logits(torch.from_numpy(x)[None], shape)[0].numpy()
        np.testing.assert_allclose(onnx_volume.linear_resize(x, shape), expected, rtol=0, atol=1e-5)
    for roi in ((8, 16, 16), (5, 7, 9)):
        np.testing.assert_allclose(onnx_volume.gaussian_map(roi), compute_importance_map(roi, mode='gaussian').numpy(),
                                   rtol=1e-6)
    for size, roi, overlap in (((30, 61, 17), (8, 16, 16), 0.5), ((8, 16, 40), (8, 16, 16), 0.25)):
        interval = [r if r == s else max(int(r * (1 - overlap)), 1) for r, s in zip(roi, size)]
        monai_starts = sorted({tuple(sl.start for sl in w) for w in dense_patch_slices(size, roi, interval)})
        ours = [(d, h, w) for d in onnx_volume.window_starts(size[0], roi[0], overlap)
                for h in onnx_volume.window_starts(size[1], roi[1], overlap)
                for w in onnx_volume.window_starts(size[2], roi[2], overlap)]
        assert ours == monai_starts


def test_volume_export_segments_nifti_without_torch_like_pytorch(msd_demo, preprocessed_volume_config, tmp_path):
    """The demo task's plans travel in the ONNX file; tools/deploy/infer_onnx.py (torch blocked) reads
    each NIfTI case, resamples, normalises, slides the window with mirroring, resamples back and
    writes labels with the input's affine: the same labels as densedet's PyTorch path."""
    import nibabel as nib
    from mmengine.config import Config

    from densedet.apis import inference_volume
    from densedet.preparation import plan_from_config
    cfg_path = preprocessed_volume_config(msd_demo, tmp_path / 'pre')
    plan_from_config(Config.fromfile(cfg_path), log=lambda *a: None, network=False)
    torch.manual_seed(2)  # weights whose labels vary over the case (many seeds give one class everywhere)
    model = init_model(cfg_path)
    model.init_weights()
    model.test_cfg['mirror_axes'] = [1, 2]
    model.dataset_meta = dict(classes=['background', 'liver', 'tumour'], label_values=[0, 1, 2])
    onnx_path = str(tmp_path / 'volume.onnx')
    export_onnx(model, onnx_path, tuple(model.test_cfg['roi_size']))
    from densedet.apis.onnx_export import volume_metadata
    load_script('tools/deploy/export_onnx.py').add_metadata(onnx_path, model.dataset_meta,
                                                            dict(volume=volume_metadata(model)))
    cases = sorted(osp.join(msd_demo, 'imagesTr', f) for f in __import__('os').listdir(osp.join(msd_demo, 'imagesTr')))
    blocker = tmp_path / 'blocker'
    blocker.mkdir()
    for name in ('torch', 'mmcv', 'mmengine', 'densedet', 'monai'):
        (blocker / f'{name}.py').write_text(f'raise ImportError("{name} must not be imported")\n')
    env = dict(__import__('os').environ, PYTHONPATH=str(blocker))
    out = subprocess.run([sys.executable, 'tools/deploy/infer_onnx.py', onnx_path, osp.join(msd_demo, 'imagesTr'),
                          '--out-dir', str(tmp_path / 'out')], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f'[{len(cases)}/{len(cases)}]' in out.stdout and 'cases/s' in out.stdout
    for case in cases:
        expected = inference_volume(model, case).pred_seg.numpy()
        written = nib.load(str(tmp_path / 'out' / osp.basename(case)))
        np.testing.assert_allclose(written.affine, nib.load(case).affine)
        labels = np.asarray(written.dataobj).transpose(2, 1, 0)
        assert labels.shape == expected.shape
        assert (labels == expected).mean() >= 0.999, (case, (labels == expected).mean())
        assert len(np.unique(expected)) > 1  # the comparison is not between two constant maps


def test_volume_export_without_plans_is_refused(tmp_path):
    torch.manual_seed(0)
    model = init_model(osp.join(ROOT, 'configs/demo/denseunet3d_msd-liver_demo.py'))
    path = str(tmp_path / 'bare.onnx')
    export_onnx(model, path, (16, 32, 32))
    out = subprocess.run([sys.executable, 'tools/deploy/infer_onnx.py', path, str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        f'infer_onnx.py: error: {path} is a volume network without plans metadata ("volume"): export it again '
        'with tools/deploy/export_onnx.py, which records the resampling, normalisation and window')
