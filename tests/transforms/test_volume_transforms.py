"""Volume transforms: values, geometry bookkeeping, sampling statistics."""
import numpy as np
import pytest
import torch

from densedet.transforms import (
    CropToNonzero,
    IntensityWindow,
    NormalizeFromPlans,
    PackVolumeInputs,
    PadVolume,
    RandomFlip3D,
    RandomPatchCrop,
    RandomRot90,
    ResampleSpacing,
    ZScoreNormalize,
    resampled_affine,
)


def results(shape=(8, 10, 12), channels=1, seed=0):
    rng = np.random.default_rng(seed)
    seg = np.zeros(shape, np.uint8)
    seg[2:5, 3:6, 4:8] = 1
    seg[3, 4, 5] = 2
    affine = np.diag([0.7, 0.8, 2.0, 1.0])
    affine[:3, 3] = (10, -20, 30)
    return dict(img=rng.normal(size=(channels, ) + shape).astype(np.float32), gt_seg=seg, affine=affine,
                ori_affine=affine.copy(), spacing=(2.0, 0.8, 0.7), ori_spacing=(2.0, 0.8, 0.7), ori_shape=shape,
                img_shape=shape)


def test_intensity_window_and_zscore():
    r = dict(img=np.array([[[[-1000.0, -200.0, 25.0, 250.0, 3000.0]]]], np.float32))
    out = IntensityWindow(window=(-200, 250))(dict(r))['img'].ravel()
    np.testing.assert_allclose(out, [0, 0, 0.5, 1, 1], atol=1e-6)
    out = IntensityWindow(window=(-200, 250), out_range=(-248, 202))(dict(r))['img'].ravel()
    np.testing.assert_allclose(out, [-248, -248, -23, 202, 202], atol=1e-4)  # HU - 48, the official input
    z = ZScoreNormalize()(results(channels=2))['img']
    np.testing.assert_allclose(z.mean((1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std((1, 2, 3)), 1, atol=1e-4)
    z = ZScoreNormalize(mean=[1.0], std=[2.0])(dict(img=np.full((1, 2, 2, 2), 5.0, np.float32)))['img']
    np.testing.assert_allclose(z, 2.0)
    with pytest.raises(ValueError, match='high > low'):
        IntensityWindow(window=(250, -200))


def test_resample_spacing_shapes_labels_and_affine():
    r = ResampleSpacing(spacing=(1.0, None, 1.4))(results())
    assert r['img'].shape == (1, 16, 10, 6) and r['gt_seg'].shape == (16, 10, 6)
    assert r['spacing'] == pytest.approx((1.0, 0.8, 1.4))
    assert set(np.unique(r['gt_seg'])) <= {0, 1, 2}  # nearest: no new label values
    assert r['ori_shape'] == (8, 10, 12) and r['img_shape'] == (16, 10, 6)
    # Voxel (d, h, w) of the new grid sits at old index ((w, h, d) + 0.5) * old / new - 0.5 (file axes i, j, k).
    new_index = np.array([3, 4, 5, 1.0])  # (i, j, k) = (w, h, d)
    old_index = np.array([(3 + 0.5) * 12 / 6 - 0.5, 4, (5 + 0.5) * 8 / 16 - 0.5, 1.0])
    np.testing.assert_allclose(r['affine'] @ new_index, results()['affine'] @ old_index)
    np.testing.assert_allclose(resampled_affine(np.eye(4), (4, 4, 4), (4, 4, 4)), np.eye(4))


def test_patch_crop_foreground_oversampling_and_padding():
    np.random.seed(0)
    crop = RandomPatchCrop(patch_size=(4, 4, 4), fg_ratio=1 / 3)
    hits = []
    for _ in range(600):
        r = crop(results(shape=(16, 40, 40)))
        assert r['img'].shape == (1, 4, 4, 4) and r['gt_seg'].shape == (4, 4, 4)
        hits.append(bool((r['gt_seg'] > 0).any()))
    # foreground is ~0.1% of the volume: random patches rarely hit it, the forced third always does
    assert 0.28 < np.mean(hits) < 0.42
    always = RandomPatchCrop(patch_size=(4, 4, 4), fg_ratio=1.0)
    assert all((always(results(shape=(16, 40, 40)))['gt_seg'] > 0).any() for _ in range(50))
    small = RandomPatchCrop(patch_size=(10, 12, 14), fg_ratio=0)(results())
    assert small['img'].shape == (1, 10, 12, 14)
    assert (small['gt_seg'][8:] == 255).all() and (small['img'][0, 8:] == 0).all()
    with pytest.raises(ValueError, match='fg_ratio'):
        RandomPatchCrop(patch_size=4, fg_ratio=2)


def test_flips_and_rot90_move_image_and_label_together():
    np.random.seed(1)
    for transform in (RandomFlip3D(prob=0.5), RandomRot90(prob=1.0), RandomRot90(prob=1.0, axes=(0, 1))):
        for _ in range(6):
            r = results(shape=(6, 8, 8))
            r['img'] = r['gt_seg'][None].astype(np.float32) * 10  # image = label: any mismatch shows
            out = transform(r)
            np.testing.assert_array_equal(out['img'][0], out['gt_seg'].astype(np.float32) * 10)
            assert out['img'].flags['C_CONTIGUOUS']
    out = RandomRot90(prob=1.0, axes=(1, 2))(results(shape=(6, 8, 10)))  # non-square plane: 180 degrees only
    assert out['img'].shape == (1, 6, 8, 10)


def test_pad_and_pack():
    r = PadVolume(size_divisor=(4, 8, 8))(results(shape=(5, 9, 16)))
    assert r['img'].shape == (1, 8, 16, 16) and r['pad_shape'] == (8, 16, 16)
    assert (r['gt_seg'][5:] == 255).all()
    packed = PackVolumeInputs()(r)
    assert packed['inputs'].dtype == torch.float32 and packed['inputs'].shape == (1, 8, 16, 16)
    sample = packed['data_samples']
    assert sample.gt_seg.dtype == torch.long and sample.ori_shape == (5, 9, 16)
    np.testing.assert_allclose(sample.ori_affine, results()['affine'])
    with pytest.raises(ValueError, match='size and/or size_divisor'):
        PadVolume()


def test_map_labels_lookup():
    from densedet.fileio import NiftiVolume
    from densedet.transforms import map_labels
    vol = lambda a: NiftiVolume(np.asarray(a), np.eye(4), None, 'seg.nii.gz')  # noqa: E731
    np.testing.assert_array_equal(map_labels('c', vol(np.array([[[0, 4, 1]]], np.int16)), [0, 1, 4]), [[[0, 2, 1]]])
    np.testing.assert_array_equal(map_labels('c', vol(np.array([[[-1, 3]]], np.int16)), [-1, 3]), [[[0, 1]]])
    np.testing.assert_array_equal(map_labels('c', vol(np.array([[[0., 2.]]])), None), [[[0, 2]]])
    with pytest.raises(ValueError, match=r'values \[-7, 5\] outside the declared labels \[0, 1\]'):
        map_labels('c', vol(np.array([[[0, 5, -7, 1]]], np.int16)), [0, 1])
    with pytest.raises(ValueError, match=r'values \[100000\] outside'):
        map_labels('c', vol(np.array([[[0, 100000]]], np.int32)), [0, 1])


def test_crop_to_nonzero_keeps_each_voxel_at_its_world_position():
    r = results(shape=(8, 10, 12))
    r['img'][:] = 0
    r['img'][0, 2:6, 1:9, 3:11] = 1.0
    r['img'][0, 5, 8, 10] = 7.0
    out = CropToNonzero()(dict(r))
    assert out['nonzero_bbox'] == [[2, 6], [1, 9], [3, 11]] and out['img'].shape == (1, 4, 8, 8)
    assert out['gt_seg'].shape == (4, 8, 8) and (out['gt_seg'] == r['gt_seg'][2:6, 1:9, 3:11]).all()
    # voxel (d, h, w) = (3, 7, 7) of the crop is (5, 8, 10) of the original: same world point
    np.testing.assert_allclose(out['affine'] @ [7, 7, 3, 1], r['affine'] @ [10, 8, 5, 1])
    assert out['img'][0, 3, 7, 7] == 7.0
    full = CropToNonzero()(results())  # no zeros: nothing to crop
    np.testing.assert_allclose(full['affine'], results()['affine'])


def test_normalize_from_plans_ct_clip_and_zscore_per_case(tmp_path):
    import json
    plans = tmp_path / 'plans.json'
    plans.write_text(json.dumps(dict(target_spacing=[1, 1, 1], normalization=[
        dict(modality='CT', scheme='CT', clip=[-100.0, 200.0], mean=50.0, std=25.0),
        dict(modality='T2', scheme='zscore')])))
    img = np.stack([np.array([-1000.0, 0.0, 50.0, 1000.0]).reshape(1, 1, 4),
                    np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 4)]).astype(np.float32)
    out = NormalizeFromPlans(str(plans))(dict(img=img, case_id='c'))['img']
    np.testing.assert_allclose(out[0].ravel(), [-6.0, -2.0, 0.0, 6.0])  # clipped to -100 / 200 first
    np.testing.assert_allclose(out[1].ravel(), (np.arange(1, 5) - 2.5) / np.arange(1, 5).std(), atol=1e-6)
    with pytest.raises(ValueError, match="case 'c': 1 channel"):
        NormalizeFromPlans(str(plans))(dict(img=img[:1], case_id='c'))
    # 1 mm target; the rounded grid's actual spacing (12 x 0.7 mm -> 8 voxels of 1.05 mm)
    assert ResampleSpacing(plans_file=str(plans))(results())['spacing'] == pytest.approx((1.0, 1.0, 1.05))
    with pytest.raises(ValueError, match='spacing or plans_file'):
        ResampleSpacing()
