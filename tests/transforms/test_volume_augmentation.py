"""nnU-Net-class augmentation: image and label move together under rotation and scaling, intensity
transforms never touch labels, seeded runs repeat, borders are real data when the loaded region is
large enough, bad arguments are one clear error."""
import numpy as np
import pytest
from mmengine.dataset import Compose
from scipy import ndimage

from densedet.errors import BadConfigError
from densedet.registry import TRANSFORMS
from densedet.structures import IGNORE_INDEX
from densedet.transforms import (
    NnUNetAugmentation,
    RandomBrightness,
    RandomContrast,
    RandomGamma,
    RandomGaussianBlur,
    RandomGaussianNoise,
    RandomLowResolution,
    RandomSpatial3D,
    nnunet_augmentation,
    spatial_input_size,
)


def labelled_volume(shape=(24, 40, 40)):
    """Background 0 at intensity 0, a box of class 1 at 1.0 and a ball of class 2 at 2.0."""
    grid = np.meshgrid(*[np.arange(n) for n in shape], indexing='ij')
    label = np.zeros(shape, np.uint8)
    label[6:18, 8:30, 12:26] = 1
    label[sum((g - c)**2 for g, c in zip(grid, (12, 20, 20))) <= 16] = 2
    img = label.astype(np.float32)[None].copy()
    return img, label


@pytest.mark.parametrize('kwargs', [dict(p_rotation=1.0, p_scale=0.0), dict(p_rotation=0.0, p_scale=1.0),
                                    dict(p_rotation=1.0, p_scale=1.0, rotation=(180, 0, 0))])
def test_a_labelled_shape_stays_on_its_intensity_under_rotation_and_scaling(kwargs):
    img, label = labelled_volume()
    spatial = RandomSpatial3D((16, 32, 32), **kwargs)
    moved = 0
    for seed in range(4):
        np.random.seed(seed)
        out = spatial(dict(img=img.copy(), gt_seg=label.copy()))
        assert out['img'].shape == (1, 16, 32, 32) and out['gt_seg'].shape == (16, 32, 32)
        assert out['gt_seg'].dtype == np.uint8 and out['img_shape'] == (16, 32, 32)
        seg, x = out['gt_seg'], out['img'][0]
        for c in (1, 2):
            # linear image vs nearest label may disagree on the boundary only: inside it, every
            # voxel of the class has the class's intensity
            inside = ndimage.binary_erosion(seg == c)
            assert inside.sum() > 8
            assert np.abs(x[inside] - c).max() < 0.5
        moved += not np.array_equal(seg, label[4:20, 4:36, 4:36])
    assert moved == 4  # every draw changed the patch (p = 1)


def test_zoom_above_one_enlarges_the_content_and_no_draw_is_a_centre_crop():
    img, label = labelled_volume()
    np.random.seed(0)
    out = RandomSpatial3D((24, 40, 40), p_rotation=0.0, p_scale=1.0, scale=(1.3, 1.3))(
        dict(img=img.copy(), gt_seg=label.copy()))
    assert (out['gt_seg'] == 2).sum() > 1.3**3 * 0.8 * (label == 2).sum()
    out = RandomSpatial3D((16, 32, 32), p_rotation=0.0, p_scale=0.0)(dict(img=img.copy(), gt_seg=label.copy()))
    assert np.array_equal(out['gt_seg'], label[4:20, 4:36, 4:36])
    assert np.array_equal(out['img'], img[:, 4:20, 4:36, 4:36])


def test_borders_are_real_data_when_the_loaded_region_is_spatial_input_size():
    """Rotations about one axis and zooms down to 0.85 stay inside the region (nnU-Net's rule)."""
    patch = (8, 16, 16)
    region = spatial_input_size(patch, (30, 30, 30), 0.85)
    assert all(r > p for r, p in zip(region, patch))
    label = np.ones(region, np.uint8)
    for seed, rotation in enumerate([(30, 0, 0), (0, 30, 0), (0, 0, 30)] * 2):
        spatial = RandomSpatial3D(patch, rotation=rotation, p_rotation=1.0, p_scale=1.0, scale=(0.85, 1.4))
        np.random.seed(seed)
        out = spatial(dict(img=np.ones((1, ) + region, np.float32), gt_seg=label.copy()))
        assert (out['gt_seg'] == 1).all() and np.allclose(out['img'], 1.0)
    # a region no larger than the patch: rotated corners fall outside, labelled ignore
    np.random.seed(0)
    out = RandomSpatial3D(patch, rotation=(30, 30, 30), p_rotation=1.0, p_scale=0.0)(
        dict(img=np.ones((1, ) + patch, np.float32), gt_seg=np.ones(patch, np.uint8)))
    assert (out['gt_seg'] == IGNORE_INDEX).any() and set(np.unique(out['gt_seg'])) <= {1, IGNORE_INDEX}


INTENSITY = [RandomGaussianNoise(prob=1.0), RandomGaussianBlur(prob=1.0, prob_per_channel=1.0),
             RandomBrightness(prob=1.0), RandomContrast(prob=1.0),
             RandomLowResolution(prob=1.0, prob_per_channel=1.0), RandomGamma(prob=1.0),
             RandomGamma(prob=1.0, invert=True)]


@pytest.mark.parametrize('transform', INTENSITY, ids=lambda t: type(t).__name__ + ('-inv' if getattr(
    t, 'invert', False) else ''))
def test_intensity_transforms_change_the_image_never_the_label(transform):
    img, label = labelled_volume()
    img = img + np.random.RandomState(0).rand(*img.shape).astype(np.float32)  # not piecewise constant
    np.random.seed(1)
    out = transform(dict(img=img.copy(), gt_seg=label.copy()))
    assert out['img'].shape == img.shape and out['img'].dtype == np.float32
    assert not np.allclose(out['img'], img)
    assert np.array_equal(out['gt_seg'], label)


def test_contrast_keeps_the_range_and_gamma_keeps_mean_and_std():
    img = np.random.RandomState(0).rand(2, 8, 8, 8).astype(np.float32) * 3 - 1
    np.random.seed(3)
    out = RandomContrast(prob=1.0, factor=(1.5, 1.5))(dict(img=img.copy()))['img']
    for c in range(2):
        assert out[c].min() >= img[c].min() - 1e-6 and out[c].max() <= img[c].max() + 1e-6
    out = RandomGamma(prob=1.0, gamma=(1.5, 1.5), retain_stats=True)(dict(img=img.copy()))['img']
    assert np.allclose(out.mean((1, 2, 3)), img.mean((1, 2, 3)), atol=1e-4)
    assert np.allclose(out.std((1, 2, 3)), img.std((1, 2, 3)), atol=1e-4)


def test_the_nnunet_pipeline_repeats_with_the_seed_and_differs_without():
    patch = (8, 24, 24)
    region = spatial_input_size(patch, (30, 30, 30), 0.85)
    rng = np.random.RandomState(0)
    img, label = rng.randn(2, *region).astype(np.float32), rng.randint(0, 3, region).astype(np.uint8)
    pipeline = Compose(nnunet_augmentation(patch))
    as_one_step = NnUNetAugmentation(patch)

    def run(seed):
        np.random.seed(seed)
        outs = [pipeline(dict(img=img.copy(), gt_seg=label.copy())) for _ in range(8)]
        return np.stack([o['img'] for o in outs]), np.stack([o['gt_seg'] for o in outs])

    first, again, other = run(5), run(5), run(6)
    np.random.seed(5)
    one = [as_one_step(dict(img=img.copy(), gt_seg=label.copy())) for _ in range(8)]
    assert np.array_equal(np.stack([o['img'] for o in one]), first[0])
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])
    assert first[0].shape == (8, 2) + patch


@pytest.mark.parametrize('kwargs, said', [
    (dict(patch_size=(8, 8)), 'RandomSpatial3D.patch_size needs 3 values (D, H, W), got (8, 8)'),
    (dict(patch_size=(8, 8, 8), p_rotation=1.5), 'RandomSpatial3D.p_rotation must be a probability in [0, 1], got 1.5'),
    (dict(patch_size=(8, 8, 8), scale=(1.4, 0.7)),
     'RandomSpatial3D.scale must be (low, high) with low <= high, got (1.4, 0.7)'),
])
def test_bad_arguments_are_one_clear_error(kwargs, said):
    with pytest.raises(BadConfigError) as error:
        RandomSpatial3D(**kwargs)
    assert str(error.value) == said


@pytest.mark.parametrize('config', ['configs/_base_/datasets/msd_liver_preprocessed.py',
                                    'configs/unetpp/unetpp3d_msd-liver_preprocessed.py',
                                    'configs/denseunet3d/denseunet3d_msd-braintumour_regions.py'])
def test_configs_load_the_region_their_spatial_augmentation_needs(config):
    import os.path as osp

    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    pipeline = Config.fromfile(osp.join(root, config)).train_dataloader.dataset.pipeline
    loader, augmentation = pipeline[0], TRANSFORMS.build(pipeline[1])
    assert loader.type == 'LoadPreprocessedPatch' and isinstance(augmentation, NnUNetAugmentation)
    assert tuple(loader.patch_size) == spatial_input_size(augmentation.patch_size, augmentation.rotation, 0.85)


def stored_case(tmp_path, shape, fg_voxel):
    """A preprocessed case as preprocess_volumes.py stores it: image = 1 inside the case, one
    foreground voxel of class 1 (its location stored)."""
    img, seg = np.ones((1, ) + shape, np.float32), np.zeros(shape, np.uint8)
    seg[fg_voxel] = 1
    np.save(tmp_path / 'img.npy', img)
    np.save(tmp_path / 'seg.npy', seg)
    np.savez(tmp_path / 'fg.npz', class_1=np.array([fg_voxel], np.int32))
    return dict(img_paths=[str(tmp_path / 'img.npy')], seg_path=str(tmp_path / 'seg.npy'),
                locations_path=str(tmp_path / 'fg.npz'))


def test_the_loaded_region_centres_the_crop_on_the_foreground_and_on_small_cases(tmp_path):
    """With crop_size (the spatial augmentation's centre crop), the region may reach past the case
    by half the margin (nnU-Net's loader): a foreground voxel at the case's border still lands in
    the crop, and a case smaller than the region sits in its middle."""
    from densedet.transforms import LoadPreprocessedPatch
    crop, region = (8, 16, 16), (20, 40, 40)
    info = stored_case(tmp_path, (30, 60, 60), (1, 2, 58))
    np.random.seed(0)
    in_crop = tuple(slice((r - c) // 2, (r + c) // 2) for r, c in zip(region, crop))
    out = LoadPreprocessedPatch(region, fg_ratio=1.0, crop_size=crop)(dict(info))
    assert (out['gt_seg'][in_crop] == 1).sum() == 1
    assert (out['gt_seg'] == IGNORE_INDEX).any()  # the region reached past the border
    # without crop_size the region stays inside the case: the voxel falls outside the crop
    out = LoadPreprocessedPatch(region, fg_ratio=1.0)(dict(info))
    assert (out['gt_seg'] == 1).sum() == 1 and (out['gt_seg'][in_crop] == 1).sum() == 0
    assert not (out['gt_seg'] == IGNORE_INDEX).any()
    small = stored_case(tmp_path, (6, 12, 12), (3, 6, 6))
    for seed in range(3):
        np.random.seed(seed)
        out = LoadPreprocessedPatch(region, fg_ratio=0.0, crop_size=crop)(dict(small))
        inner = out['img'][0, 7:13, 14:26, 14:26]  # the middle of the region: the case
        assert (inner == 1).all() and out['img'].sum() == 6 * 12 * 12
