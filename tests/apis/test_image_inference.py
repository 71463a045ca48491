"""tools/infer.py and densedet.apis.segment_inputs: images, folders, globs and videos with a trained
2D config, no dataset; overlays, palette label maps / COCO results json; bad files skipped."""
import glob
import json
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from densedet.apis import collect_inputs, init_model, segment_inputs

SEG_CFG = 'configs/demo/upernet_rdnet_ade20k_demo.py'
DET_CFG = 'configs/demo/mask-rcnn_rdnet_coco_demo.py'


def _checkpoint(repo_root, cfg, path, dataset_meta):
    torch.manual_seed(0)
    model = init_model(osp.join(repo_root, cfg))
    torch.save({'state_dict': model.state_dict(), 'meta': {'dataset_meta': dataset_meta}}, path)
    return str(path)


def test_cli_segments_a_folder_and_skips_unreadable_files(repo_root, demo_data, tmp_path):
    images = tmp_path / 'images'
    images.mkdir()
    for src in sorted(glob.glob(osp.join(demo_data, 'images', 'validation', '*.jpg'))):
        (images / osp.basename(src)).write_bytes(open(src, 'rb').read())
    (images / 'broken.jpg').write_text('not an image')
    classes = tuple(f'c{i}' for i in range(150))
    palette = [[i, 255 - i, (7 * i) % 256] for i in range(150)]
    ckpt = _checkpoint(repo_root, SEG_CFG, tmp_path / 'seg.pth', dict(classes=classes, palette=palette))
    out = subprocess.run([sys.executable, 'tools/infer.py', SEG_CFG, ckpt, str(images), '--out-dir',
                          str(tmp_path / 'out'), '--opacity', '0.6'], cwd=repo_root, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert '2 images in' in out.stdout and 'images/s' in out.stdout
    assert f'1 input(s) skipped:\n  {images / "broken.jpg"}: not a readable image' in out.stdout
    for name in ('ADE_demo_v_00000', 'ADE_demo_v_00001'):
        overlay = cv2.imread(str(tmp_path / 'out' / 'overlays' / f'{name}.png'))
        source = cv2.imread(str(images / f'{name}.jpg'))
        assert overlay.shape == source.shape and not np.array_equal(overlay, source)
        from PIL import Image
        label = Image.open(tmp_path / 'out' / 'pred' / f'{name}.png')
        assert label.mode == 'P' and label.size == (source.shape[1], source.shape[0])
        assert np.asarray(label).max() < 150
        assert label.getpalette()[:6] == [0, 255, 0, 1, 254, 7]  # the checkpoint's palette


def test_detection_on_a_video_writes_an_mp4_and_coco_results(repo_root, coco_demo, tmp_path):
    frames = [cv2.imread(p) for p in sorted(glob.glob(osp.join(coco_demo, 'val2017', '*.png')))[:3]]
    h, w = frames[0].shape[:2]
    video = str(tmp_path / 'clip.mp4')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 5, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    ckpt = _checkpoint(repo_root, DET_CFG, tmp_path / 'det.pth',
                       dict(classes=('disc', 'box', 'triangle'), cat_ids=[1, 3, 7]))
    model = init_model(osp.join(repo_root, DET_CFG), ckpt)
    model.roi_head.bbox_head.fc_cls.bias.data[1] = 10.0  # random weights: make class 1 confident
    model.cfg.test_dataloader.dataset.data_root = coco_demo  # frames are not in its annotation file
    annotated = json.load(open(osp.join(coco_demo, 'annotations', 'instances_val2017.json')))['images']
    first_free = max(im['id'] for im in annotated) + 1
    summary = segment_inputs(model, video, str(tmp_path / 'out'), score_thr=0.3, progress=False)
    assert summary['images'] == 3 and not summary['failed']
    capture = cv2.VideoCapture(str(tmp_path / 'out' / 'overlays' / 'clip.mp4'))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    ok, frame = capture.read()
    assert ok and frame.shape == (h, w, 3)
    images = json.loads((tmp_path / 'out' / 'images.json').read_text())
    assert [i['file_name'] for i in images] == ['clip.mp4#0', 'clip.mp4#1', 'clip.mp4#2']
    results = json.loads((tmp_path / 'out' / 'results.json').read_text())
    assert summary['results'] == str(tmp_path / 'out' / 'results.json')
    assert [i['id'] for i in images] == [first_free, first_free + 1, first_free + 2]  # after the dataset's ids
    assert results and {r['image_id'] for r in results} <= {i['id'] for i in images}
    assert summary['coco_ids'] == 'dataset'
    import pycocotools.mask as mask_util
    for r in results:
        assert r['category_id'] == 3 and r['score'] >= 0.3 and len(r['bbox']) == 4  # class 1's COCO id
        rle = dict(r['segmentation'], counts=r['segmentation']['counts'].encode())
        assert mask_util.decode(rle).shape == (h, w)


def test_inputs_globs_and_missing_paths(tmp_path):
    for name in ('b.png', 'a.jpg', 'c.txt'):
        (tmp_path / name).write_bytes(b'')
    assert collect_inputs(str(tmp_path)) == [str(tmp_path / 'a.jpg'), str(tmp_path / 'b.png')]
    assert collect_inputs(str(tmp_path / '*.png')) == [str(tmp_path / 'b.png')]
    with pytest.raises(FileNotFoundError, match='no input found at'):
        collect_inputs(str(tmp_path / 'missing' / '*.jpg'))


def test_a_checkpoint_with_classes_but_no_palette_paints_overlays(repo_root, demo_data, tmp_path):
    classes = tuple(f'c{i}' for i in range(150))
    ckpt = _checkpoint(repo_root, SEG_CFG, tmp_path / 'seg.pth', dict(classes=classes))
    model = init_model(osp.join(repo_root, SEG_CFG), ckpt)
    assert len(model.dataset_meta['palette']) == 150  # a seeded colour per class
    image = osp.join(demo_data, 'images', 'validation', 'ADE_demo_v_00000.jpg')
    summary = segment_inputs(model, image, str(tmp_path / 'out'), progress=False)
    assert summary['images'] == 1 and not summary['failed']
