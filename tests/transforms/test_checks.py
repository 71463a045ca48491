import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

from densedet.transforms.checks import CheckSegSample


def _pipeline():
    init_default_scope('mmseg')
    return Compose([
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', reduce_zero_label=True),
        dict(type='CheckSegSample', num_classes=150),
    ])


def _sample(img_path, seg_path):
    return dict(img_path=str(img_path), seg_map_path=str(seg_path), reduce_zero_label=True, seg_fields=[])


def _write(tmp_path, label, img_shape=None):
    img = np.full(img_shape or (*label.shape, 3), 100, np.uint8)
    cv2.imwrite(str(tmp_path / 'a.jpg'), img)
    cv2.imwrite(str(tmp_path / 'a.png'), label)
    return tmp_path / 'a.jpg', tmp_path / 'a.png'


def test_valid_labels_pass(tmp_path):
    label = np.zeros((8, 8), np.uint8)
    label[:4] = 150
    label[4:6] = 255
    out = _pipeline()(_sample(*_write(tmp_path, label)))
    assert set(np.unique(out['gt_seg_map'])) == {149, 255}


def test_label_value_outside_classes_names_file(tmp_path):
    label = np.ones((8, 8), np.uint8)
    label[0, 0] = 151
    with pytest.raises(ValueError, match=r'a.png has values \[151\] outside the 150 classes'):
        _pipeline()(_sample(*_write(tmp_path, label)))


def test_size_mismatch_names_both_files(tmp_path):
    label = np.ones((8, 8), np.uint8)
    with pytest.raises(ValueError, match=r'label .*a.png is 8x8 .* image .*a.jpg is 10x6'):
        _pipeline()(_sample(*_write(tmp_path, label, img_shape=(6, 10, 3))))


def test_corrupt_image_names_file(tmp_path):
    _write(tmp_path, np.ones((8, 8), np.uint8))
    (tmp_path / 'a.jpg').write_bytes(b'\xff\xd8 this is not a jpeg')
    with pytest.raises(Exception, match=r'a.jpg'):
        _pipeline()(_sample(tmp_path / 'a.jpg', tmp_path / 'a.png'))


def test_demo_data_is_ade20k_layout_and_valid(demo_data):
    init_default_scope('mmseg')
    from mmseg.datasets import ADE20KDataset
    ds = ADE20KDataset(data_root=demo_data,
                       data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
                       pipeline=[dict(type='LoadImageFromFile'),
                                 dict(type='LoadAnnotations', reduce_zero_label=True),
                                 dict(type='CheckSegSample', num_classes=150)])
    assert len(ds) == 8
    sample = ds[0]
    assert sample['img'].shape[:2] == sample['gt_seg_map'].shape
    assert osp.isfile(osp.join(demo_data, 'annotations', 'validation', 'ADE_demo_v_00000.png'))


def test_inference_samples_without_a_label_file_pass_through():
    # mmseg's inference_model / MMSegInferencer drop LoadAnnotations and give bare images.
    results = {'img': np.zeros((4, 4, 3), np.uint8), 'img_path': 'a.jpg'}
    assert CheckSegSample(num_classes=2)(results) is results


def test_a_named_label_that_was_not_loaded_is_an_error():
    with pytest.raises(KeyError, match=r'no gt_seg_map for b\.png; put it after LoadAnnotations'):
        CheckSegSample(num_classes=2)({'img': np.zeros((4, 4, 3), np.uint8), 'seg_map_path': 'b.png'})
