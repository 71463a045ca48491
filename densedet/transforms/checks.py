"""Input validation for segmentation samples: fail on the sample, naming its files."""
import numpy as np
from mmcv.transforms import BaseTransform

from densedet.errors import BadDataError, ConfigKeyError
from densedet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CheckSegSample(BaseTransform):
    """Checks a loaded segmentation sample; put it right after ``LoadAnnotations``.

    A sample without a label file (``seg_map_path`` absent: mmseg's ``inference_model`` and
    ``MMSegInferencer`` drop ``LoadAnnotations`` and feed bare images) passes through unchecked;
    a sample that names a label file but has no loaded label raises ``KeyError`` (the pipeline
    lacks ``LoadAnnotations`` before this check).

    Raises ``ValueError`` naming the label (and image) file when

    * a label value is neither a class index ``< num_classes`` nor ``ignore_index``
      (after ``reduce_zero_label``: for ADE20K raw values 0..150 and 255 are valid);
    * ``check_size`` and the label's height/width differ from the image's.

    Args:
        num_classes: number of classes the model predicts.
        ignore_index: the label value that marks ignored pixels.
        check_size: compare label and image sizes (disable when the image was
            resized before the label was loaded, as in mmseg's test pipeline).
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, check_size: bool = True):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.check_size = check_size

    def transform(self, results: dict) -> dict:
        seg = results.get('gt_seg_map')
        label_path = results.get('seg_map_path')
        if seg is None and label_path is None:  # inference on images: nothing to check
            return results
        if seg is None:
            raise ConfigKeyError(f'CheckSegSample: no gt_seg_map for {label_path}; put it after LoadAnnotations')
        img = results.get('img')
        if self.check_size and img is not None and img.shape[:2] != seg.shape[:2]:
            raise BadDataError(f'label {label_path} is {seg.shape[1]}x{seg.shape[0]} (WxH) but image '
                               f'{results.get("img_path")} is {img.shape[1]}x{img.shape[0]}')
        values = np.unique(seg)
        bad = values[(values >= self.num_classes) & (values != self.ignore_index)]
        if bad.size:
            hint = ''
            if results.get('reduce_zero_label'):
                bad = bad + 1  # report the values as they are stored in the file
                hint = f' (file values must be in 0..{self.num_classes} or {self.ignore_index})'
            raise BadDataError(f'label {label_path} has values {bad.tolist()} outside the '
                               f'{self.num_classes} classes{hint}')
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(num_classes={self.num_classes}, ignore_index={self.ignore_index}, '
                f'check_size={self.check_size})')
