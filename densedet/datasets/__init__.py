"""Datasets densedet adds to the OpenMMLab registries (ADE20K and COCO themselves come from mmseg/mmdet)."""
from .camvid import CamVidDataset
from .coco import CheckedCocoDataset

__all__ = ['CamVidDataset', 'CheckedCocoDataset']
