"""Datasets densedet adds to the OpenMMLab registries (ADE20K and COCO come from mmseg/mmdet)."""
