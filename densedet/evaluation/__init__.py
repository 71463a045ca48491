"""Metrics densedet adds (mmseg's IoUMetric and mmdet's CocoMetric are used as they are)."""
from .volume_metric import NiftiPredictionWriter, VolumeMetric, dice_from_counts, hd95, write_prediction

__all__ = ['VolumeMetric', 'NiftiPredictionWriter', 'dice_from_counts', 'hd95', 'write_prediction']
