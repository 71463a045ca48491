"""MSD, nnU-Net v2 and LiTS layouts; the loading transform's checks."""
import json
import os

import nibabel as nib
import numpy as np
import pytest
from mmengine.dataset import Compose

from densedet.datasets import LiTSDataset, MSDDataset, NnUNetDataset

from scripts import load_script

LOAD = [dict(type='LoadVolumeFromFile'), dict(type='PackVolumeInputs')]


def save(path, data, affine=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data), np.eye(4) if affine is None else affine), str(path))


def blob(shape=(6, 7, 8), values=(0, 1, 2)):
    label = np.zeros(shape, np.uint8)
    label[1:4, 1:4, 1:4] = values[1]
    label[2, 2, 2] = values[2]
    return label


def test_msd_dataset_train_and_test(msd_demo):
    ds = MSDDataset(data_root=msd_demo, pipeline=LOAD)
    assert len(ds) == 4
    assert ds.metainfo['classes'] == ('background', 'liver', 'tumour')
    assert ds.metainfo['modalities'] == ('CT', )
    item = ds[0]
    sample = item['data_samples']
    assert item['inputs'].shape[0] == 1 and item['inputs'].shape[1:] == sample.gt_seg.shape
    assert sample.case_id == 'liver_0' and set(sample.gt_seg.unique().tolist()) == {0, 1, 2}
    assert not np.allclose(sample.ori_affine, np.eye(4))  # the generator's affines are not the identity
    test = MSDDataset(data_root=msd_demo, split='test', pipeline=LOAD, test_mode=True)
    assert [d['case_id'] for d in test.data_list] == ['liver_4']
    assert 'gt_seg' not in test[0]['data_samples']
    subset = MSDDataset(data_root=msd_demo, cases=['liver_3', 'liver_1'], pipeline=LOAD)
    assert [d['case_id'] for d in subset.data_list] == ['liver_3', 'liver_1']
    with pytest.raises(KeyError, match=r"cases \['liver_99'\] are not in"):
        MSDDataset(data_root=msd_demo, cases=['liver_99'])


def _msd_copy(msd_demo, tmp_path, edit):
    import shutil
    root = tmp_path / 'Task'
    shutil.copytree(msd_demo, root)
    desc = json.load(open(root / 'dataset.json'))
    edit(desc, root)
    json.dump(desc, open(root / 'dataset.json', 'w'))
    return str(root)


def test_msd_without_test_list_and_missing_files(msd_demo, tmp_path):
    root = _msd_copy(msd_demo, tmp_path, lambda d, r: d.pop('test'))  # the test list is optional
    assert [d['case_id'] for d in MSDDataset(data_root=root, split='test').data_list] == ['liver_4']

    def drop_image(desc, root):
        os.remove(root / 'imagesTr' / 'liver_2.nii.gz')

    root = _msd_copy(msd_demo, tmp_path / 'b', drop_image)
    with pytest.raises(FileNotFoundError, match=r"case 'liver_2' \(.*dataset.json training\[2\]\) names .*liver_2"):
        MSDDataset(data_root=root)


def test_msd_4d_multimodal(tmp_path):
    root = tmp_path / 'Task01'
    save(root / 'imagesTr' / 'b_0.nii.gz', np.random.rand(8, 7, 6, 2).astype(np.float32))
    save(root / 'labelsTr' / 'b_0.nii.gz', blob((8, 7, 6)))
    json.dump({'labels': {'0': 'bg', '1': 'edema', '2': 'tumour'}, 'modality': {'0': 'FLAIR', '1': 'T1w'},
               'training': [{'image': './imagesTr/b_0.nii.gz', 'label': './labelsTr/b_0.nii.gz'}]},
              open(root / 'dataset.json', 'w'))
    item = MSDDataset(data_root=str(root), pipeline=LOAD)[0]
    assert tuple(item['inputs'].shape) == (2, 6, 7, 8)


def test_nnunet_layout_channels_and_label_mapping(tmp_path):
    root = tmp_path / 'Dataset004_Hippo'
    for case in ('hip_001', 'hip_002'):
        for c in range(2):
            save(root / 'imagesTr' / f'{case}_{c:04d}.nii.gz', np.full((5, 6, 7), c, np.float32))
        save(root / 'labelsTr' / f'{case}.nii.gz', blob((5, 6, 7), values=(0, 1, 4)))
    save(root / 'imagesTs' / 'hip_100_0000.nii.gz', np.zeros((5, 6, 7), np.float32))
    save(root / 'imagesTs' / 'hip_100_0001.nii.gz', np.zeros((5, 6, 7), np.float32))
    json.dump({'channel_names': {'0': 'T1', '1': 'T2'}, 'labels': {'background': 0, 'anterior': 1, 'posterior': 4},
               'numTraining': 2, 'file_ending': '.nii.gz'}, open(root / 'dataset.json', 'w'))
    ds = NnUNetDataset(data_root=str(root), pipeline=LOAD)
    assert [d['case_id'] for d in ds.data_list] == ['hip_001', 'hip_002']
    assert ds.metainfo['classes'] == ('background', 'anterior', 'posterior')
    item = ds[0]
    assert tuple(item['inputs'].shape) == (2, 7, 6, 5)
    assert item['inputs'][1].eq(1).all() and item['inputs'][0].eq(0).all()  # channel order _0000, _0001
    assert sorted(item['data_samples'].gt_seg.unique().tolist()) == [0, 1, 2]  # label value 4 -> class 2
    test = NnUNetDataset(data_root=str(root), split='test')
    assert [d['case_id'] for d in test.data_list] == ['hip_100']
    os.remove(root / 'imagesTr' / 'hip_002_0001.nii.gz')
    with pytest.raises(FileNotFoundError, match=r"case 'hip_002'.*hip_002_0001.nii.gz"):
        NnUNetDataset(data_root=str(root))


def test_lits_layout(tmp_path):
    root = tmp_path / 'LiTS'
    for i, batch in [(10, 'Training Batch 2'), (2, 'Training Batch 1'), (0, 'Training Batch 1')]:
        save(root / batch / f'volume-{i}.nii', np.random.rand(6, 7, 8).astype(np.float32) * 400 - 200)
        save(root / batch / f'segmentation-{i}.nii', blob((6, 7, 8)))
    save(root / 'Test' / 'test-volume-3.nii', np.zeros((6, 7, 8), np.float32))
    ds = LiTSDataset(data_root=str(root), pipeline=LOAD)
    assert [d['case_id'] for d in ds.data_list] == ['volume-0', 'volume-2', 'volume-10']  # numeric order
    assert ds.metainfo['classes'] == ('background', 'liver', 'tumor')
    assert ds[2]['data_samples'].seg_path.endswith('Training Batch 2/segmentation-10.nii')
    assert [d['case_id'] for d in LiTSDataset(data_root=str(root), split='test').data_list] == ['test-volume-3']
    os.remove(root / 'Training Batch 1' / 'segmentation-2.nii')
    with pytest.raises(FileNotFoundError, match=r"case 'volume-2' \(volume-2.nii\) names .*segmentation-2"):
        LiTSDataset(data_root=str(root))


def _case(tmp_path, image, label, img_affine=None, seg_affine=None, num_channels=1, label_values=(0, 1, 2)):
    save(tmp_path / 'img.nii.gz', image, img_affine)
    save(tmp_path / 'seg.nii.gz', label, seg_affine)
    return dict(case_id='case_7', img_paths=[str(tmp_path / 'img.nii.gz')], seg_path=str(tmp_path / 'seg.nii.gz'),
                num_channels=num_channels, label_values=list(label_values))


def test_loading_errors_name_the_case(tmp_path):
    load = Compose([dict(type='LoadVolumeFromFile')])
    img = np.zeros((6, 7, 8), np.float32)
    with pytest.raises(ValueError, match=r"case 'case_7': label .*seg.nii.gz has shape \(7, 7, 6\).*image"):
        load(_case(tmp_path, img, blob((6, 7, 7))))
    shifted = np.eye(4)
    shifted[0, 3] = 5.0
    with pytest.raises(ValueError, match=r"case 'case_7': label .*seg.nii.gz has a different affine"):
        load(_case(tmp_path, img, blob(), seg_affine=shifted))
    with pytest.raises(ValueError, match=r"case 'case_7': label .*seg.nii.gz has values \[7\] outside the declared "
                       r'labels \[0, 1, 2\]'):
        load(_case(tmp_path, img, blob(values=(0, 1, 7))))
    with pytest.raises(ValueError, match=r"case 'case_7' image .*img.nii.gz has shape \(6, 7, 8, 2\) \(4D\); "
                       'expected 3D'):
        load(_case(tmp_path, np.zeros((6, 7, 8, 2), np.float32), blob()))
    with pytest.raises(ValueError, match="case 'case_7': image .* has 2 channel.*declares 3 modalities"):
        load(_case(tmp_path, np.zeros((6, 7, 8, 2), np.float32), blob(), num_channels=3))
    with pytest.raises(ValueError, match='non-integer values'):
        load(_case(tmp_path, img, blob().astype(np.float32) + 0.5))
    results = load(_case(tmp_path, img, blob()))
    assert results['gt_seg'].dtype == np.uint8 and results['img'].shape == (1, 8, 7, 6)


def test_demo_generator_is_deterministic_and_anisotropic(tmp_path):
    generate = load_script('tools/data/make_demo_msd.py').generate
    generate(str(tmp_path / 'a'), num_train=2, num_test=1, seed=3)
    generate(str(tmp_path / 'b'), num_train=2, num_test=1, seed=3)
    for rel in ('dataset.json', 'imagesTr/liver_1.nii.gz', 'labelsTr/liver_1.nii.gz', 'imagesTs/liver_2.nii.gz'):
        assert (tmp_path / 'a' / rel).read_bytes() == (tmp_path / 'b' / rel).read_bytes()
    img = nib.load(str(tmp_path / 'a' / 'imagesTr' / 'liver_0.nii.gz'))
    zooms = img.header.get_zooms()
    assert zooms[2] == pytest.approx(2.5) and zooms[0] < 1.2  # anisotropic
    assert not np.allclose(img.affine[:3, :3], np.diag(np.diag(img.affine[:3, :3])))  # rotated, not axis-aligned
    label = np.asarray(nib.load(str(tmp_path / 'a' / 'labelsTr' / 'liver_0.nii.gz')).dataobj)
    assert set(np.unique(label)) == {0, 1, 2}


def test_bad_dataset_json(msd_demo, tmp_path):
    root = _msd_copy(msd_demo, tmp_path, lambda d, r: d.pop('labels'))
    with pytest.raises(KeyError, match=r"dataset.json: key 'labels' is missing \(not an MSD dataset.json\?\)"):
        MSDDataset(data_root=root)
    (tmp_path / 'Task' / 'dataset.json').write_text('{"labels": ')
    with pytest.raises(ValueError, match='dataset.json is not valid JSON'):
        MSDDataset(data_root=root)
    with pytest.raises(KeyError, match='region labels need "regions_class_order"'):
        nn = tmp_path / 'nn'
        save(nn / 'labelsTr' / 'a.nii.gz', blob())
        json.dump({'channel_names': {'0': 'CT'}, 'labels': {'background': 0, 'whole': [1, 2]}},
                  open(nn / 'dataset.json', 'w'))
        NnUNetDataset(data_root=str(nn))
