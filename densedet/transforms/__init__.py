from .checks import CheckSegSample
from .volume import (
    CropToNonzero,
    IntensityWindow,
    LoadPreprocessedPatch,
    LoadVolumeFromFile,
    NormalizeFromPlans,
    PackVolumeInputs,
    PadVolume,
    RandomFlip3D,
    RandomPatchCrop,
    RandomRot90,
    ResampleSpacing,
    ZScoreNormalize,
)

__all__ = [
    'CheckSegSample', 'LoadVolumeFromFile', 'IntensityWindow', 'ZScoreNormalize', 'NormalizeFromPlans', 'CropToNonzero',
    'ResampleSpacing', 'RandomPatchCrop', 'LoadPreprocessedPatch', 'RandomFlip3D', 'RandomRot90', 'PadVolume',
    'PackVolumeInputs'
]
