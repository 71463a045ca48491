"""nnU-Net-class data augmentation of volume patches (``(C, D, H, W)`` image, ``(D, H, W)`` label).

The defaults are nnU-Net v2's (``nnUNetTrainer.get_training_transforms``): rotation and scaling
(p 0.2 each) drawn on a larger region and cropped, so the patch's borders are real data;
Gaussian noise (p 0.1), Gaussian blur (p 0.2), multiplicative brightness (p 0.15), contrast
(p 0.15), simulated low resolution (p 0.25), inverted gamma (p 0.1), gamma (p 0.3); mirroring is
:class:`~densedet.transforms.RandomFlip3D`. A config lists them after the patch loader
(:class:`NnUNetAugmentation` is the whole list as one step).

What comes from MONAI (the resampling and filters, on torch): the affine resampling
(``monai.transforms.Affine``), Gaussian blur (``GaussianSmooth``), contrast
(``ScaleIntensityFixedMean`` with ``preserve_range``), gamma (``AdjustContrast`` with
``invert_image`` / ``retain_stats``). Written here: the parameter draws (nnU-Net's per-channel
probabilities and its "below or above 1 with equal chance" factors, which MONAI's ``Rand*``
transforms do not have), noise and brightness (one line each), and the low-resolution
simulation (MONAI's ``RandSimulateLowResolution`` cannot leave an axis alone, which anisotropic
patches need). Every draw uses numpy's global generator, which mmengine seeds per worker:
seeded runs repeat.
"""
import math
from typing import Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform

from densedet.errors import BadConfigError
from densedet.registry import TRANSFORMS
from densedet.structures import IGNORE_INDEX

Range = Tuple[float, float]


def _range(value, name: str) -> Range:
    lo, hi = (float(v) for v in value)
    if lo > hi:
        raise BadConfigError(f'{name} must be (low, high) with low <= high, got {tuple(value)}')
    return lo, hi


def _probability(value: float, name: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise BadConfigError(f'{name} must be a probability in [0, 1], got {value}')
    return float(value)


def below_or_above_one(bounds: Range) -> float:
    """nnU-Net's factor draw: with equal chance from ``[low, 1)`` or ``[1, high]`` (a factor that
    darkens is as likely as one that brightens, whatever the range's asymmetry)."""
    lo, hi = bounds
    if np.random.rand() < 0.5 and lo < 1:
        return float(np.random.uniform(lo, 1))
    return float(np.random.uniform(max(lo, 1), hi))


def spatial_input_size(patch_size: Sequence[int], rotation: Sequence[float], min_scale: float) -> Tuple[int, ...]:
    """The region :class:`RandomSpatial3D` rotates and zooms out of, around a ``patch_size``
    output (nnU-Net's ``get_patch_size``): the box enclosing the patch rotated about each axis
    alone by up to ``rotation`` degrees, enlarged by 1 / ``min_scale`` and one voxel each side for
    the interpolation. A draw that rotates about several axes at once (or zooms out further) can
    reach past it at the patch corners: those voxels are padding, labelled ignore. (The box for
    combined rotations is about twice the volume: nnU-Net's trade, kept.) ``LoadPreprocessedPatch``
    loads this size."""
    corners = np.array(np.meshgrid(*[[-s / 2, s / 2] for s in patch_size], indexing='ij')).reshape(3, -1)
    extent = np.abs(corners).max(1)
    for axis, degrees in enumerate(rotation):
        for angle in np.radians(np.linspace(-degrees, degrees, 2 * int(abs(degrees)) + 1)):
            extent = np.maximum(extent, np.abs(_rotation(axis, angle) @ corners).max(1))
    return tuple(int(math.ceil(2 * e / min(min_scale, 1.0))) + 2 for e in extent)


def _rotation(axis: int, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    a, b = [i for i in range(3) if i != axis]
    m = np.eye(3)
    m[a, a], m[a, b], m[b, a], m[b, b] = c, -s, s, c
    return m


def _centre_crop(array: np.ndarray, size: Sequence[int], fill) -> np.ndarray:
    """The centre ``size`` of the last three axes (padded with ``fill`` where the input is smaller)."""
    spatial = array.shape[-3:]
    out = np.full(array.shape[:-3] + tuple(size), fill, dtype=array.dtype)
    src, dst = [], []
    for n, s in zip(spatial, size):
        start = (n - s) // 2
        a, b = max(start, 0), min(start + s, n)
        src.append(slice(a, b))
        dst.append(slice(a - start, b - start))
    out[(Ellipsis, ) + tuple(dst)] = array[(Ellipsis, ) + tuple(src)]
    return out


@TRANSFORMS.register_module()
class RandomSpatial3D(BaseTransform):
    """Rotation and scaling about the centre of the loaded region, resampled to ``patch_size``
    (image trilinear, label nearest; outside the loaded region: image ``pad_val``, label ignored).
    Without a drawn rotation or scaling it is a centre crop (no interpolation), as nnU-Net does.

    Args:
        patch_size: output ``(D, H, W)``; load :func:`spatial_input_size` voxels before it.
        rotation: largest angle in degrees about the D, H, W axes (nnU-Net: 30 each; an
            anisotropic patch: ``(180, 0, 0)``, in-plane only).
        p_rotation, scale, p_scale: nnU-Net's 0.2, (0.7, 1.4), 0.2; one zoom for all axes
            (> 1 enlarges the content).
        elastic: also MONAI's ``Rand3DElastic`` deformation with probability ``p_elastic``
            (off by default, as in nnU-Net v2; a second resampling, ``elastic_sigma`` /
            ``elastic_magnitude`` in voxels).
    """

    def __init__(self, patch_size: Sequence[int], rotation: Union[float, Sequence[float]] = 30.0,
                 p_rotation: float = 0.2, scale: Range = (0.7, 1.4), p_scale: float = 0.2,
                 elastic: bool = False, p_elastic: float = 0.2, elastic_sigma: Range = (5.0, 8.0),
                 elastic_magnitude: Range = (50.0, 150.0), pad_val: float = 0.0):
        self.patch_size = tuple(int(s) for s in patch_size)
        if len(self.patch_size) != 3:
            raise BadConfigError(f'RandomSpatial3D.patch_size needs 3 values (D, H, W), got {patch_size}')
        rotation = (rotation, ) * 3 if isinstance(rotation, (int, float)) else tuple(rotation)
        if len(rotation) != 3:
            raise BadConfigError(f'RandomSpatial3D.rotation needs one angle per axis (D, H, W), got {rotation}')
        self.rotation = tuple(float(r) for r in rotation)
        self.p_rotation = _probability(p_rotation, 'RandomSpatial3D.p_rotation')
        self.scale = _range(scale, 'RandomSpatial3D.scale')
        if self.scale[0] <= 0:
            raise BadConfigError(f'RandomSpatial3D.scale must be positive, got {scale}')
        self.p_scale = _probability(p_scale, 'RandomSpatial3D.p_scale')
        self.elastic = elastic
        self.p_elastic = _probability(p_elastic, 'RandomSpatial3D.p_elastic')
        self.elastic_sigma, self.elastic_magnitude = elastic_sigma, elastic_magnitude
        self.pad_val = pad_val

    def _draw(self):
        angles = None
        if any(self.rotation) and np.random.rand() < self.p_rotation:
            angles = [math.radians(np.random.uniform(-r, r)) if r else 0.0 for r in self.rotation]
        zoom = float(np.random.uniform(*self.scale)) if np.random.rand() < self.p_scale else None
        return angles, zoom

    def transform(self, results: dict) -> dict:
        angles, zoom = self._draw()
        img, seg = results['img'], results.get('gt_seg')
        if angles is None and zoom is None:
            results['img'] = _centre_crop(img, self.patch_size, self.pad_val)
            if seg is not None:
                results['gt_seg'] = _centre_crop(seg, self.patch_size, IGNORE_INDEX)
        else:
            from monai.transforms import Affine
            # MONAI's scale_params scale the sampling grid: 1 / zoom enlarges the content by zoom
            scale = None if zoom is None else (1.0 / zoom, ) * 3
            affine = dict(rotate_params=angles, scale_params=scale, spatial_size=self.patch_size,
                          padding_mode='zeros', image_only=True)
            image = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))
            if self.pad_val:
                image = image - self.pad_val
            out = Affine(mode='bilinear', **affine)(image)
            results['img'] = (out.as_tensor() + self.pad_val if self.pad_val else out.as_tensor()).numpy()
            if seg is not None:
                # label + 1 resampled with zero padding: 0 marks "outside" (-> ignored)
                shifted = torch.from_numpy(seg.astype(np.float32) + 1)[None]
                label = Affine(mode='nearest', **affine)(shifted).as_tensor()[0].numpy()
                results['gt_seg'] = np.where(label == 0, IGNORE_INDEX, label - 1).astype(np.uint8)
        if self.elastic and np.random.rand() < self.p_elastic:
            self._deform(results)
        results['img_shape'] = self.patch_size
        return results

    def _deform(self, results: dict) -> None:
        from monai.transforms import Rand3DElasticd
        keys = ['img'] + (['gt_seg'] if 'gt_seg' in results else [])
        deform = Rand3DElasticd(keys, sigma_range=self.elastic_sigma, magnitude_range=self.elastic_magnitude,
                                prob=1.0, mode=['bilinear', 'nearest'][:len(keys)], padding_mode='border')
        deform.set_random_state(seed=int(np.random.randint(2**31)))
        data = dict(img=results['img'])
        if 'gt_seg' in results:
            data['gt_seg'] = results['gt_seg'][None].astype(np.float32)
        out = deform(data)
        results['img'] = np.asarray(out['img'], dtype=np.float32)
        if 'gt_seg' in results:
            results['gt_seg'] = np.asarray(out['gt_seg'])[0].astype(np.uint8)


class _IntensityTransform(BaseTransform):
    """Applied to the image with probability ``prob``; never touches the label."""

    def __init__(self, prob: float):
        self.prob = _probability(prob, f'{type(self).__name__}.prob')

    def transform(self, results: dict) -> dict:
        if np.random.rand() < self.prob:
            results['img'] = np.ascontiguousarray(self.apply(np.asarray(results['img'], dtype=np.float32)),
                                                  dtype=np.float32)
        return results

    def apply(self, img: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@TRANSFORMS.register_module()
class RandomGaussianNoise(_IntensityTransform):
    """Additive noise of variance drawn from ``variance`` (one for all channels)."""

    def __init__(self, prob: float = 0.1, variance: Range = (0.0, 0.1)):
        super().__init__(prob)
        self.variance = _range(variance, 'RandomGaussianNoise.variance')

    def apply(self, img):
        sigma = math.sqrt(np.random.uniform(*self.variance))
        return img + np.random.normal(0.0, sigma, img.shape).astype(np.float32)


@TRANSFORMS.register_module()
class RandomGaussianBlur(_IntensityTransform):
    """Each channel with probability ``prob_per_channel`` smoothed by a Gaussian of sigma drawn
    per axis from ``sigma`` (voxels; MONAI's ``GaussianSmooth``)."""

    def __init__(self, prob: float = 0.2, sigma: Range = (0.5, 1.0), prob_per_channel: float = 0.5):
        super().__init__(prob)
        self.sigma = _range(sigma, 'RandomGaussianBlur.sigma')
        self.prob_per_channel = _probability(prob_per_channel, 'RandomGaussianBlur.prob_per_channel')

    def apply(self, img):
        from monai.transforms import GaussianSmooth
        for c in range(img.shape[0]):
            if np.random.rand() < self.prob_per_channel:
                sigma = [float(np.random.uniform(*self.sigma)) for _ in range(3)]
                img[c] = np.asarray(GaussianSmooth(sigma=sigma)(torch.from_numpy(img[c:c + 1])))[0]
        return img


@TRANSFORMS.register_module()
class RandomBrightness(_IntensityTransform):
    """Each channel multiplied by a factor drawn from ``multiplier`` (below or above 1 with equal
    chance)."""

    def __init__(self, prob: float = 0.15, multiplier: Range = (0.75, 1.25)):
        super().__init__(prob)
        self.multiplier = _range(multiplier, 'RandomBrightness.multiplier')

    def apply(self, img):
        factors = np.array([below_or_above_one(self.multiplier) for _ in range(img.shape[0])], np.float32)
        return img * factors[:, None, None, None]


@TRANSFORMS.register_module()
class RandomContrast(_IntensityTransform):
    """Each channel's deviation from its mean scaled by a factor from ``factor`` (below or above
    1 with equal chance), clipped to the channel's range (MONAI's ``ScaleIntensityFixedMean``)."""

    def __init__(self, prob: float = 0.15, factor: Range = (0.75, 1.25), preserve_range: bool = True):
        super().__init__(prob)
        self.factor = _range(factor, 'RandomContrast.factor')
        self.preserve_range = preserve_range

    def apply(self, img):
        from monai.transforms import ScaleIntensityFixedMean
        for c in range(img.shape[0]):
            scale = ScaleIntensityFixedMean(factor=below_or_above_one(self.factor) - 1.0,
                                            preserve_range=self.preserve_range, fixed_mean=True)
            img[c] = np.asarray(scale(img[c]))
        return img


@TRANSFORMS.register_module()
class RandomLowResolution(_IntensityTransform):
    """Each channel with probability ``prob_per_channel`` downsampled by a zoom from ``zoom`` (one
    for all axes but ``ignore_axes``; nearest) and upsampled back (trilinear)."""

    def __init__(self, prob: float = 0.25, zoom: Range = (0.5, 1.0), prob_per_channel: float = 0.5,
                 ignore_axes: Sequence[int] = ()):
        super().__init__(prob)
        self.zoom = _range(zoom, 'RandomLowResolution.zoom')
        self.prob_per_channel = _probability(prob_per_channel, 'RandomLowResolution.prob_per_channel')
        self.ignore_axes = tuple(ignore_axes)

    def apply(self, img):
        shape = img.shape[1:]
        for c in range(img.shape[0]):
            if np.random.rand() < self.prob_per_channel:
                zoom = np.random.uniform(*self.zoom)
                small = [n if a in self.ignore_axes else max(1, round(n * zoom)) for a, n in enumerate(shape)]
                channel = torch.from_numpy(img[c])[None, None]
                down = F.interpolate(channel, size=small, mode='nearest-exact')
                img[c] = F.interpolate(down, size=shape, mode='trilinear', align_corners=False)[0, 0].numpy()
        return img


@TRANSFORMS.register_module()
class RandomGamma(_IntensityTransform):
    """Each channel rescaled to [0, 1], raised to a gamma from ``gamma`` (below or above 1 with
    equal chance) and scaled back; ``invert`` applies it to the negated image (dark structures
    brighten); ``retain_stats`` restores the channel's mean and std (MONAI's ``AdjustContrast``)."""

    def __init__(self, prob: float = 0.3, gamma: Range = (0.7, 1.5), invert: bool = False, retain_stats: bool = True):
        super().__init__(prob)
        self.gamma = _range(gamma, 'RandomGamma.gamma')
        self.invert, self.retain_stats = invert, retain_stats

    def apply(self, img):
        from monai.transforms import AdjustContrast
        for c in range(img.shape[0]):
            adjust = AdjustContrast(gamma=below_or_above_one(self.gamma), invert_image=self.invert,
                                    retain_stats=self.retain_stats)
            img[c] = np.asarray(adjust(torch.from_numpy(img[c])))
        return img


def nnunet_augmentation(patch_size: Sequence[int], anisotropic: bool = False, mirror_axes=(0, 1, 2)) -> list:
    """nnU-Net v2's default training augmentation as a densedet pipeline tail (after the loader,
    before ``PackVolumeInputs``). ``anisotropic``: nnU-Net's "dummy 2D" setting for patches much
    thinner along D (in-plane rotation up to 180 degrees, low resolution in plane only)."""
    rotation = (180.0, 0.0, 0.0) if anisotropic else (30.0, 30.0, 30.0)
    return [
        dict(type='RandomSpatial3D', patch_size=tuple(patch_size), rotation=rotation),
        dict(type='RandomGaussianNoise'),
        dict(type='RandomGaussianBlur'),
        dict(type='RandomBrightness'),
        dict(type='RandomContrast'),
        dict(type='RandomLowResolution', ignore_axes=(0, ) if anisotropic else ()),
        dict(type='RandomGamma', prob=0.1, invert=True),
        dict(type='RandomGamma', prob=0.3),
        dict(type='RandomFlip3D', prob=0.5, axes=tuple(mirror_axes)),
    ]


@TRANSFORMS.register_module()
class NnUNetAugmentation(BaseTransform):
    """nnU-Net v2's default training augmentation as one pipeline step (the transforms of
    :func:`nnunet_augmentation`, in order); after a loader that read
    ``spatial_input_size(patch_size, rotation, 0.85)`` voxels. List the single transforms instead to
    change one of them.

    Args:
        patch_size: the output ``(D, H, W)``.
        anisotropic: nnU-Net's "dummy 2D" setting for patches much thinner along D (in-plane
            rotation up to 180 degrees, low resolution in plane only).
        mirror_axes: the axes ``RandomFlip3D`` mirrors (0 = D, 1 = H, 2 = W).
    """

    def __init__(self, patch_size: Sequence[int], anisotropic: bool = False, mirror_axes: Sequence[int] = (0, 1, 2)):
        self.patch_size, self.anisotropic = tuple(patch_size), anisotropic
        self.rotation = (180.0, 0.0, 0.0) if anisotropic else (30.0, 30.0, 30.0)
        self.transforms = [TRANSFORMS.build(t) for t in nnunet_augmentation(patch_size, anisotropic, mirror_axes)]

    def transform(self, results: dict) -> dict:
        for t in self.transforms:
            results = t(results)
        return results
