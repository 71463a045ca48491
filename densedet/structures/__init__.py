"""Data sample types densedet adds (mmseg's ``SegDataSample`` / ``PixelData`` are 2D only)."""
from .volume_data_sample import IGNORE_INDEX, VolumeDataSample

__all__ = ['IGNORE_INDEX', 'VolumeDataSample']
