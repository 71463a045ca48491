from .checks import CheckSegSample
from .volume import (IntensityWindow, LoadVolumeFromFile, PackVolumeInputs, PadVolume, RandomFlip3D, RandomPatchCrop,
                     RandomRot90, ResampleSpacing, ZScoreNormalize)

__all__ = [
    'CheckSegSample', 'LoadVolumeFromFile', 'IntensityWindow', 'ZScoreNormalize', 'ResampleSpacing', 'RandomPatchCrop',
    'RandomFlip3D', 'RandomRot90', 'PadVolume', 'PackVolumeInputs'
]
