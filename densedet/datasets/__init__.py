"""Datasets densedet adds to the OpenMMLab registries (ADE20K and COCO themselves come from mmseg/mmdet)."""
from .camvid import CamVidDataset
from .coco import CheckedCocoDataset
from .preprocessed import PreprocessedVolumeDataset
from .volume import LiTSDataset, MSDDataset, NnUNetDataset, VolumeDataset

__all__ = [
    'CamVidDataset', 'CheckedCocoDataset', 'VolumeDataset', 'MSDDataset', 'NnUNetDataset', 'LiTSDataset',
    'PreprocessedVolumeDataset'
]
