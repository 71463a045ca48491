"""Transforms densedet registers: a label / image check for mmseg pipelines and the volume path,
split as mmseg splits its own (loading, intensity, spatial, formatting), and nnU-Net-class
augmentation."""
from .checks import CheckSegSample
from .volume_augmentation import (
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
from .volume_formatting import PackVolumeInputs
from .volume_intensity import IntensityWindow, NormalizeFromPlans, ZScoreNormalize
from .volume_loading import LoadPreprocessedPatch, LoadVolumeFromFile, map_labels
from .volume_spatial import (
    CropToNonzero,
    PadVolume,
    RandomFlip3D,
    RandomPatchCrop,
    RandomRot90,
    ResampleSpacing,
    nonzero_bbox,
    resampled_affine,
)

__all__ = [
    'CheckSegSample', 'LoadVolumeFromFile', 'IntensityWindow', 'ZScoreNormalize', 'NormalizeFromPlans', 'CropToNonzero',
    'ResampleSpacing', 'RandomPatchCrop', 'LoadPreprocessedPatch', 'RandomFlip3D', 'RandomRot90', 'PadVolume',
    'PackVolumeInputs', 'map_labels', 'nonzero_bbox', 'resampled_affine', 'RandomSpatial3D', 'RandomGaussianNoise',
    'RandomGaussianBlur', 'RandomBrightness', 'RandomContrast', 'RandomLowResolution', 'RandomGamma',
    'nnunet_augmentation', 'spatial_input_size', 'NnUNetAugmentation'
]
