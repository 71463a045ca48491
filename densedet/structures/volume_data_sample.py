"""The data sample of the volume path."""
import torch
from mmengine.structures import BaseDataElement

#: label value of voxels / pixels the losses and metrics skip (mmseg's ``ignore_index``): padding,
#: crop borders, labels a dataset maps to "void"
IGNORE_INDEX = 255


class VolumeDataSample(BaseDataElement):
    """One case of a volume segmentation batch.

    Data fields (tensors, ``(D, H, W)``): ``gt_seg`` (labels 0..K-1, 255 = ignore),
    ``pred_seg`` (predicted labels on the *original* voxel grid) and, when the model is asked
    to keep them, ``seg_logits`` (``(K, D, H, W)``, same grid).

    Meta fields (set by the pipeline): ``case_id``, ``img_paths``, ``seg_path``,
    ``ori_shape`` / ``ori_spacing`` / ``affine`` / ``header`` of the file,
    ``img_shape`` / ``spacing`` after resampling, ``pad_shape`` after padding, ``classes``.
    """

    def _typed(name: str):  # noqa: N805  (property factory)

        def getter(self) -> torch.Tensor:
            return getattr(self, f'_{name}')

        def setter(self, value: torch.Tensor):
            self.set_field(value, f'_{name}', dtype=torch.Tensor)

        def deleter(self):
            del self[f'_{name}']

        return property(getter, setter, deleter)

    gt_seg = _typed('gt_seg')
    pred_seg = _typed('pred_seg')
    seg_logits = _typed('seg_logits')
    del _typed
