"""Plans, one-off preprocessing and memory-mapped patches (densedet/preparation/,
preprocessed.py, transforms LoadPreprocessedPatch / NormalizeFromPlans / CropToNonzero)."""
import copy
import hashlib
import json
import os
import os.path as osp
import shutil

import nibabel as nib
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import Compose

from densedet.datasets import PreprocessedVolumeDataset
from densedet.fileio import load_plans, read_nifti, write_nifti
from densedet.preparation import (
    fit_patch_size,
    make_plans,
    make_splits,
    plan_from_config,
    preprocess_dataset,
    target_spacing,
)
from densedet.transforms import LoadPreprocessedPatch

from scripts import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _fingerprint(case, spacing, shape, samples=()):
    return dict(case_id=case, spacing=list(spacing), shape=list(shape), nonzero_shape=list(shape),
                foreground=[dict(count=len(samples), mean=0.0, samples=list(samples))])


# ---------------------------------------------------------------- plans (hand-checked values)


def test_target_spacing_is_the_median_for_isotropic_data():
    spacings = np.array([[1.0, 0.8, 0.8], [1.2, 0.7, 0.7], [0.9, 0.9, 0.9]])
    shapes = np.array([[200, 256, 256]] * 3)
    assert target_spacing(spacings, shapes) == pytest.approx([1.0, 0.8, 0.8])


def test_target_spacing_of_strongly_anisotropic_data_takes_the_10th_percentile_of_the_coarse_axis():
    # slices of 3..6 mm, 0.8 mm in plane, ~30 slices of ~400 x 400: median 4.5 mm is > 3 x 0.8 and
    # 30 x 3 < 400, so the slice axis gets percentile 10 of (3, 4, 5, 6) = 3.3 mm
    spacings = np.array([[5.0, 0.8, 0.8], [6.0, 0.8, 0.8], [3.0, 0.8, 0.8], [4.0, 0.8, 0.8]])
    shapes = np.array([[30, 400, 400], [28, 410, 410], [40, 390, 390], [32, 400, 400]])
    assert target_spacing(spacings, shapes) == pytest.approx([3.3, 0.8, 0.8])
    # same spacings but many slices (the voxel grid is not anisotropic): the median stays
    assert target_spacing(spacings, np.array([[300, 400, 400]] * 4)) == pytest.approx([4.5, 0.8, 0.8])


def test_ct_normalisation_uses_foreground_percentiles_mean_and_std_and_mr_gets_zscore():
    samples = np.arange(1001, dtype=np.float64)  # 0..1000: percentiles 5 and 995
    prints = [_fingerprint('a', (1, 1, 1), (8, 8, 8), samples[:500]), _fingerprint('b', (1, 1, 1), (8, 8, 8),
                                                                                    samples[500:])]
    ct = make_plans(prints, ['CT'])['normalization'][0]
    assert ct['scheme'] == 'CT'
    assert ct['clip'] == pytest.approx([5.0, 995.0])
    assert ct['mean'] == pytest.approx(500.0) and ct['std'] == pytest.approx(samples.std())
    assert make_plans(prints, ['T2'])['normalization'][0] == dict(modality='T2', scheme='zscore')


def test_patch_size_shrinks_the_physically_longest_axis_until_the_budget_fits():
    # median 40 x 200 x 200 voxels at 2.5 x 0.8 x 0.8 mm, divisor 8: starts at 40 x 200 x 200; the
    # in-plane axes (160 mm) are longer than the slices (100 mm) and shrink first, alternately
    patch = fit_patch_size([40, 200, 200], [2.5, 0.8, 0.8], (8, 8, 8), bytes_per_voxel=1.0, budget=40 * 120 * 128)
    assert patch == [40, 120, 128]
    assert fit_patch_size([10, 10, 10], [1, 1, 1], (8, 8, 8), 1.0, 1e9) == [16, 16, 16]  # rounded up


def test_splits_are_five_disjoint_seeded_folds():
    ids = [f'case_{i}' for i in range(23)]
    splits = make_splits(ids)
    assert len(splits) == 5 and splits == make_splits(list(reversed(ids)))
    vals = [c for s in splits for c in s['val']]
    assert sorted(vals) == sorted(ids)  # every case validates exactly once
    for s in splits:
        assert not set(s['train']) & set(s['val']) and sorted(s['train'] + s['val']) == sorted(ids)
    assert make_splits(ids, seed=1) != splits
    with pytest.raises(ValueError, match='at least 5 cases'):
        make_splits(ids[:3])


# ---------------------------------------------------------------- the demo task, planned and preprocessed


@pytest.fixture(scope='module')
def task(tmp_path_factory, preprocessed_volume_config):
    """Six synthetic MSD-layout CT cases and the preprocessed demo config pointed at them."""
    generate = load_script('tools/data/make_demo_msd.py').generate
    base = tmp_path_factory.mktemp('task')
    raw = generate(str(base / 'Task03_Liver'), num_train=6, num_test=1, seed=3)
    return raw, Config.fromfile(preprocessed_volume_config(raw, base / 'pre'))


@pytest.fixture(scope='module')
def config_for(preprocessed_volume_config):
    return lambda raw, out_dir: Config.fromfile(preprocessed_volume_config(raw, out_dir))


@pytest.fixture(scope='module')
def preprocessed(task):
    raw, cfg = task
    plans = plan_from_config(cfg, log=lambda *a: None)
    stats = preprocess_dataset(cfg.preprocess.to_dict(), log=lambda *a: None)
    assert stats['done'] == 6 and stats['skipped'] == 0
    return raw, cfg, plans


def test_plans_of_the_demo_task(preprocessed):
    raw, cfg, plans = preprocessed
    assert plans == load_plans(cfg.preprocess.plans_file)
    spacings = [read_nifti(osp.join(raw, 'imagesTr', f'liver_{i}.nii.gz')).spacing for i in range(6)]
    assert plans['target_spacing'] == pytest.approx(np.median(spacings, axis=0).tolist())
    (ct, ) = plans['normalization']
    assert ct['scheme'] == 'CT' and ct['clip'][0] < ct['mean'] < ct['clip'][1]  # liver ~110 HU, tumour ~35 HU
    assert all(p % d == 0 for p, d in zip(plans['patch_size'], plans['divisor'])) and plans['divisor'] == [4, 32, 32]
    splits = json.load(open(osp.join(osp.dirname(cfg.preprocess.plans_file), 'splits.json')))
    assert len(splits) == 5 and sorted(c for s in splits for c in s['val']) == [f'liver_{i}' for i in range(6)]


def _stored(out_dir):
    return {name: hashlib.sha256(open(osp.join(out_dir, 'cases', name), 'rb').read()).hexdigest()
            for name in sorted(os.listdir(osp.join(out_dir, 'cases')))}


def test_patch_from_the_memory_map_equals_the_same_crop_of_the_nifti_path(preprocessed):
    raw, cfg, _ = preprocessed
    dataset = PreprocessedVolumeDataset(data_root=cfg.preprocess.out_dir, pipeline=[])
    nifti = Compose(cfg.preprocess.pipeline)  # the same transforms, on the original file, in memory
    for index, patch_size, fg_ratio in ((0, (16, 32, 32), 0.0), (3, (16, 32, 32), 1.0), (1, (32, 64, 80), 0.5)):
        info = dataset.get_data_info(index)
        np.random.seed(index)
        patch = LoadPreprocessedPatch(patch_size, fg_ratio=fg_ratio)(copy.deepcopy(info))
        full = nifti(dict(case_id=info['case_id'], img_paths=[osp.join(raw, 'imagesTr', info['case_id'] + '.nii.gz')],
                          seg_path=osp.join(raw, 'labelsTr', info['case_id'] + '.nii.gz'), label_values=[0, 1, 2],
                          num_channels=1))
        box = tuple(slice(a, min(b, n)) for (a, b), n in zip(patch['crop_bbox'], full['gt_seg'].shape))
        inside = tuple(slice(0, s.stop - s.start) for s in box)
        # exact: the stored arrays are the float32 / uint8 output of the same transforms
        np.testing.assert_array_equal(patch['img'][(slice(None), ) + inside], full['img'][(slice(None), ) + box])
        np.testing.assert_array_equal(patch['gt_seg'][inside], full['gt_seg'][box])
        if patch_size == (32, 64, 80):  # larger than the case (24 x ~56 x ~56): padded, label ignored
            assert (patch['gt_seg'][24:] == 255).all() and (patch['img'][:, 24:] == 0).all()
        if fg_ratio == 1.0:
            assert patch['gt_seg'][tuple(s // 2 for s in patch_size)] in (1, 2)  # centred on foreground
        assert patch['spacing'] == pytest.approx(full['spacing'])
        np.testing.assert_allclose(patch['affine'], full['affine'])
        np.testing.assert_allclose(patch['ori_affine'], full['ori_affine'])


def test_foreground_oversampling_matches_fg_ratio(preprocessed):
    _, cfg, _ = preprocessed
    info = PreprocessedVolumeDataset(data_root=cfg.preprocess.out_dir, pipeline=[]).get_data_info(0)
    np.random.seed(0)
    load = LoadPreprocessedPatch((8, 8, 8), fg_ratio=1.0, fg_classes=[2])
    centres = [load(copy.deepcopy(info))['gt_seg'][4, 4, 4] for _ in range(30)]
    assert all(c == 2 for c in centres)  # only tumour, as asked


def test_rerun_skips_finished_cases_and_finishes_a_killed_one_identically(preprocessed, tmp_path):
    _, cfg, _ = preprocessed
    out_dir = cfg.preprocess.out_dir
    before = _stored(out_dir)
    lines = []
    assert preprocess_dataset(cfg.preprocess.to_dict(), log=lines.append)['skipped'] == 6
    # a run killed while writing liver_2: its image half-written, no properties, a temporary file left
    img = osp.join(out_dir, 'cases', 'liver_2_img.npy')
    data = open(img, 'rb').read()
    open(img, 'wb').write(data[:len(data) // 2])
    os.remove(osp.join(out_dir, 'cases', 'liver_2.json'))
    open(img + '.tmp123', 'wb').write(b'partial')
    lines = []
    stats = preprocess_dataset(cfg.preprocess.to_dict(), workers=2, log=lines.append)
    assert stats['done'] == 1 and stats['skipped'] == 5
    assert any('liver_2: left half-written' in line for line in lines)
    os.remove(img + '.tmp123')
    assert _stored(out_dir) == before


def test_a_raw_case_edited_after_preprocessing_is_detected(task, config_for, tmp_path):
    raw, _ = task
    copy_root = str(tmp_path / 'Task03_Liver')
    shutil.copytree(raw, copy_root)
    cfg = config_for(copy_root, str(tmp_path / 'pre'))
    plan_from_config(cfg, log=lambda *a: None)
    preprocess_dataset(cfg.preprocess.to_dict(), log=lambda *a: None)
    label = osp.join(copy_root, 'labelsTr', 'liver_4.nii.gz')
    seg = read_nifti(label, dtype=None)
    changed = seg.data.copy()
    changed[0, 0, 0] = 1
    write_nifti(changed, label, seg.affine, seg.header)
    with pytest.raises(ValueError, match=r"case 'liver_4': .*liver_4.nii.gz changed after it was preprocessed"):
        PreprocessedVolumeDataset(data_root=cfg.preprocess.out_dir, pipeline=[])
    lines = []
    stats = preprocess_dataset(cfg.preprocess.to_dict(), log=lines.append)
    assert stats['done'] == 1 and any('liver_4: raw file(s) changed' in line for line in lines)
    assert len(PreprocessedVolumeDataset(data_root=cfg.preprocess.out_dir, pipeline=[])) == 6


def test_shards_split_the_cases_and_together_equal_one_run(preprocessed, task, tmp_path):
    raw, _ = task
    _, cfg, _ = preprocessed
    pre = cfg.preprocess.to_dict()
    pre['out_dir'] = str(tmp_path / 'sharded')
    done = [preprocess_dataset(pre, shard=f'{i}/3', log=lambda *a: None)['done'] for i in range(3)]
    assert done == [2, 2, 2]
    assert _stored(pre['out_dir']) == _stored(cfg.preprocess.out_dir)
    with pytest.raises(ValueError, match='--shard'):
        preprocess_dataset(pre, shard='3/3')


def test_folds_select_cases_of_raw_and_preprocessed_datasets(preprocessed):
    raw, cfg, _ = preprocessed
    splits_file = osp.join(cfg.preprocess.out_dir, 'splits.json')
    split = json.load(open(splits_file))[2]
    train = PreprocessedVolumeDataset(data_root=cfg.preprocess.out_dir, splits_file=splits_file, fold=2, pipeline=[])
    assert [train.get_data_info(i)['case_id'] for i in range(len(train))] == split['train']
    from densedet.datasets import MSDDataset
    val = MSDDataset(data_root=raw, splits_file=splits_file, fold=2, fold_part='val', pipeline=[])
    assert [val.get_data_info(i)['case_id'] for i in range(len(val))] == split['val']
    with pytest.raises(ValueError, match='fold 7 does not exist'):
        MSDDataset(data_root=raw, splits_file=splits_file, fold=7, pipeline=[])


def test_bad_cases_fail_at_planning_naming_the_case(task, config_for, tmp_path):
    raw, _ = task
    broken = str(tmp_path / 'Task03_Liver')
    shutil.copytree(raw, broken)
    label = osp.join(broken, 'labelsTr', 'liver_1.nii.gz')
    seg = read_nifti(label, dtype=None)
    bad = seg.data.copy()
    bad[0, 0, 0] = 7
    write_nifti(bad, label, seg.affine, seg.header)
    cfg = config_for(broken, str(tmp_path / 'pre'))
    with pytest.raises(ValueError, match=r"case 'liver_1': label .* values \[7\] outside the declared labels"):
        plan_from_config(cfg, log=lambda *a: None)
    shifted = seg.affine.copy()
    shifted[0, 3] += 5.0
    write_nifti(seg.data, label, shifted, seg.header)
    with pytest.raises(ValueError, match=r"case 'liver_1': label .*liver_1.nii.gz has a different affine"):
        plan_from_config(cfg, log=lambda *a: None)
    write_nifti(seg.data, label, seg.affine, seg.header)
    image = osp.join(broken, 'imagesTr', 'liver_3.nii.gz')
    vol = read_nifti(image)
    nib.save(nib.Nifti1Image(np.stack([vol.data.transpose(2, 1, 0)] * 2, -1), vol.affine), image)  # 4D
    with pytest.raises(ValueError,
                       match=r"case 'liver_3' image file .*liver_3.nii.gz has shape .* \(4D\); expected 3D"):
        plan_from_config(cfg, log=lambda *a: None)
    os.remove(image)
    with pytest.raises(FileNotFoundError, match=r"case 'liver_3'"):
        plan_from_config(cfg, log=lambda *a: None)
    with pytest.raises(FileNotFoundError, match='run tools/data/plan_volumes.py'):
        preprocess_dataset(config_for(raw, str(tmp_path / 'unplanned')).preprocess.to_dict())


# ---------------------------------------------------------------- back to the original grid


def test_prediction_through_the_plans_comes_back_on_the_original_grid(preprocessed, tmp_path):
    """preprocess -> predict -> write back: the original shape and affine, on the demo cases and on
    nibabel's anatomical.nii (a real scanner file, 2 mm; its own plans: MR z-score, 3 mm)."""
    raw, cfg, _ = preprocessed
    import torch

    from densedet.apis import inference_volume, init_volume_model
    torch.manual_seed(0)
    model = init_volume_model(cfg)
    for case in ('liver_0', 'liver_5'):
        src = osp.join(raw, 'imagesTr', f'{case}.nii.gz')
        out = str(tmp_path / f'{case}.nii.gz')
        inference_volume(model, src, out_path=out)
        a, b = nib.load(src), nib.load(out)
        assert a.shape == b.shape and np.allclose(a.affine, b.affine)
    anatomical = osp.join(osp.dirname(nib.__file__), 'tests', 'data', 'anatomical.nii')
    plans_file = str(tmp_path / 'anatomical_plans.json')
    json.dump(dict(target_spacing=[3.0, 3.0, 3.0], normalization=[dict(modality='T1', scheme='zscore')]),
              open(plans_file, 'w'))
    model.cfg.test_dataloader.dataset.pipeline = [
        dict(type='LoadVolumeFromFile'), dict(type='NormalizeFromPlans', plans_file=plans_file),
        dict(type='ResampleSpacing', plans_file=plans_file), dict(type='PackVolumeInputs')]
    out = str(tmp_path / 'anatomical_pred.nii')
    sample = inference_volume(model, anatomical, out_path=out)
    a, b = nib.load(anatomical), nib.load(out)
    assert a.shape[:3] == b.shape and np.allclose(a.affine, b.affine)
    assert sample.metainfo['img_shape'] != tuple(a.shape[:3][::-1])  # it was resampled on the way


def test_lits_variant_plans_preprocesses_and_samples_hdenseunet_crops(task, tmp_path):
    """configs/hdenseunet/hdenseunet_lits_preprocessed.py on LiTS-layout copies of the synthetic cases: the
    stored volumes are HU-windowed on their own grid; crops are always centred on foreground."""
    raw, _ = task
    lits = tmp_path / 'LiTS' / 'Training Batch 1'
    lits.mkdir(parents=True)
    for i in range(5):
        shutil.copy(osp.join(raw, 'imagesTr', f'liver_{i}.nii.gz'), lits / f'volume-{i}.nii.gz')
        shutil.copy(osp.join(raw, 'labelsTr', f'liver_{i}.nii.gz'), lits / f'segmentation-{i}.nii.gz')
    text = open(osp.join(ROOT, 'configs/hdenseunet/hdenseunet_lits_preprocessed.py')).read()
    text = text.replace("'../hdenseunet_lits.py'", repr(osp.join(ROOT, 'configs/hdenseunet_lits.py')))
    text = text.replace("'data/LiTS_preprocessed'", repr(str(tmp_path / 'pre'))).replace("'data/LiTS'",
                                                                                         repr(str(tmp_path / 'LiTS')))
    (tmp_path / 'cfg.py').write_text(text)
    cfg = Config.fromfile(str(tmp_path / 'cfg.py'))
    plan_from_config(cfg, log=lambda *a: None, network=False)
    assert preprocess_dataset(cfg.preprocess.to_dict(), log=lambda *a: None)['done'] == 5
    from mmengine.registry import DATASETS
    train_cfg = cfg.train_dataloader.dataset.to_dict()
    train_cfg['pipeline'][0]['patch_size'] = (4, 32, 32)
    dataset = DATASETS.build(train_cfg)
    assert len(dataset) == 4  # fold 0's training cases
    np.random.seed(0)
    sample = dataset[0]
    assert tuple(sample['inputs'].shape) == (1, 4, 32, 32)
    assert sample['data_samples'].gt_seg[2, 16, 16] in (1, 2)  # centred on liver or tumour
    stored = np.load(osp.join(cfg.preprocess.out_dir, 'cases', 'volume-0_img.npy'))
    original = read_nifti(str(lits / 'volume-0.nii.gz')).data
    np.testing.assert_allclose(stored[0], np.clip(original, -200, 250) - 48, atol=1e-4)  # the HU window, no resampling
