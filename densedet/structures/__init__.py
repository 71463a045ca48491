"""Data sample types densedet adds (mmseg's ``SegDataSample`` / ``PixelData`` are 2D only) and the
label / region conventions of the volume path."""
from .labels import evaluation_targets, labels_from_probabilities, probabilities, region_masks
from .volume_data_sample import IGNORE_INDEX, VolumeDataSample

__all__ = ['IGNORE_INDEX', 'VolumeDataSample', 'evaluation_targets', 'labels_from_probabilities', 'probabilities',
           'region_masks']
