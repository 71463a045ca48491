"""CheckedCocoDataset: mmdet's COCO parsing plus one clear error or warning per bad annotation."""
import json
import shutil

import pytest
from mmengine.registry import init_default_scope

from densedet.datasets import CheckedCocoDataset

from scripts import load_script

CLASSES = ('disc', 'box', 'triangle')


def _copy(coco_demo, tmp_path):
    root = tmp_path / 'coco'
    shutil.copytree(coco_demo, root)
    return root


def _edit(root, edit):
    path = root / 'annotations' / 'instances_train2017.json'
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return data


def _build(root, test_mode=False, **kwargs):
    init_default_scope('mmdet')
    return CheckedCocoDataset(data_root=str(root), ann_file='annotations/instances_train2017.json',
                              data_prefix=dict(img='train2017/'), metainfo=dict(classes=CLASSES),
                              filter_cfg=dict(filter_empty_gt=True, min_size=32), test_mode=test_mode,
                              pipeline=[], **kwargs)


def test_clean_data_parses_like_mmdet(coco_demo, tmp_path):
    from mmdet.datasets import CocoDataset
    root = _copy(coco_demo, tmp_path)
    ours = _build(root)
    theirs = CocoDataset(data_root=str(root), ann_file='annotations/instances_train2017.json',
                         data_prefix=dict(img='train2017/'), metainfo=dict(classes=CLASSES),
                         filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline=[])
    assert len(ours) == len(theirs) == 8
    for i in range(len(ours)):
        assert ours.get_data_info(i) == theirs.get_data_info(i)
    # non-contiguous COCO ids map to contiguous labels, crowd regions are kept as ignored instances
    labels = {inst['bbox_label'] for i in range(len(ours)) for inst in ours.get_data_info(i)['instances']}
    assert labels <= {0, 1, 2}
    assert any(inst['ignore_flag'] for i in range(len(ours)) for inst in ours.get_data_info(i)['instances'])


def test_missing_image_file_names_json_and_image(coco_demo, tmp_path):
    root = _copy(coco_demo, tmp_path)
    (root / 'train2017' / '000000000003.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'instances_train2017.json.*image id 3 .*000000000003.png'):
        _build(root)
    assert len(_build(root, check_files=False)) == 8  # opt-out for remote backends


def test_unknown_category_names_json_and_annotation(coco_demo, tmp_path):
    root = _copy(coco_demo, tmp_path)
    data = _edit(root, lambda d: d['annotations'][4].update(category_id=99))
    bad = data['annotations'][4]['id']
    with pytest.raises(ValueError, match=rf'instances_train2017.json: annotation id {bad} .*category_id 99'):
        _build(root)


def test_degenerate_boxes_are_skipped_with_warning(coco_demo, tmp_path):
    root = _copy(coco_demo, tmp_path)

    def edit(d):
        d['annotations'][0]['bbox'][2] = 0  # zero width
        d['annotations'][1]['area'] = 0

    data = _edit(root, edit)
    ids = [data['annotations'][0]['id'], data['annotations'][1]['id']]
    with pytest.warns(UserWarning,
                      match=rf'2 annotations with a zero-width.*skipped \(annotation ids {ids[0]}, {ids[1]}\)'):
        ds = _build(root)
    kept = {tuple(inst['bbox']) for i in range(len(ds)) for inst in ds.get_data_info(i)['instances']}
    assert len(kept) == len(data['annotations']) - 2


def test_polygons_outside_image_are_clipped_or_skipped(coco_demo, tmp_path):
    root = _copy(coco_demo, tmp_path)

    def edit(d):
        partly = d['annotations'][0]
        partly['segmentation'][0][0] = -30.0  # one vertex left of the image
        partly['bbox'][0] = -30.0
        away = d['annotations'][1]
        away['bbox'] = [500.0, 500.0, 20.0, 20.0]
        away['segmentation'] = [[500, 500, 520, 500, 520, 520]]

    data = _edit(root, edit)
    partly_id, away_id = data['annotations'][0]['id'], data['annotations'][1]['id']
    with pytest.warns(UserWarning) as record:
        ds = _build(root)
    messages = ' '.join(str(w.message) for w in record)
    assert f'1 annotations entirely outside their image skipped (annotation ids {away_id})' in messages
    assert f'1 annotations partly outside their image clipped to it (annotation ids {partly_id})' in messages
    info = next(ds.get_data_info(i) for i in range(len(ds))
                if ds.get_data_info(i)['img_id'] == data['annotations'][0]['image_id'])
    xs = [inst['mask'][0][0::2] for inst in info['instances']]
    assert all(min(x) >= 0 for x in xs) and min(inst['bbox'][0] for inst in info['instances']) >= 0


def test_images_without_annotations_are_filtered_with_warning(coco_demo, tmp_path):
    root = _copy(coco_demo, tmp_path)
    data = _edit(root, lambda d: d.update(annotations=[a for a in d['annotations'] if a['image_id'] != 2]))
    assert data['images'][1]['id'] == 2
    with pytest.warns(UserWarning, match=r'1 images without usable annotations .*image ids 2\)'):
        assert len(_build(root)) == 7
    assert len(_build(root, test_mode=True)) == 8  # evaluation keeps every image


def test_generator_is_deterministic(tmp_path):
    generate = load_script('tools/data/make_demo_coco.py').generate
    generate(str(tmp_path / 'a'), num_train=3, num_val=1, seed=5)
    generate(str(tmp_path / 'b'), num_train=3, num_val=1, seed=5)
    for rel in ('annotations/instances_train2017.json', 'train2017/000000000002.png', 'val2017/000000001001.png'):
        assert (tmp_path / 'a' / rel).read_bytes() == (tmp_path / 'b' / rel).read_bytes()
