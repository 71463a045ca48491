"""Data sample types densedet adds (mmseg's ``SegDataSample`` / ``PixelData`` are 2D only)."""
from .volume_data_sample import VolumeDataSample

__all__ = ['VolumeDataSample']
