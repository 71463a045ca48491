"""Metrics densedet adds (mmseg's IoUMetric and mmdet's CocoMetric are used as they are)."""
from .postprocessing import decide_largest_component, keep_largest_component
from .volume_metric import NiftiPredictionWriter, VolumeMetric, dice_from_counts, hd95, write_prediction

__all__ = [
    'decide_largest_component', 'keep_largest_component', 'VolumeMetric', 'NiftiPredictionWriter', 'dice_from_counts',
    'hd95', 'write_prediction'
]
