"""Batching of volumes: mmseg's ``SegDataPreProcessor`` stacks 2D images only."""
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor

from densedet.errors import BadConfigError, BadDataError
from densedet.registry import MODELS
from densedet.structures import IGNORE_INDEX


def _per_axis(value, name):
    if value is None:
        return (1, 1, 1)
    value = (value, ) * 3 if isinstance(value, int) else tuple(value)
    if len(value) != 3:
        raise BadConfigError(f'VolumeDataPreProcessor: {name} needs one value per axis (D, H, W), got {value}')
    return value


@MODELS.register_module()
class VolumeDataPreProcessor(BaseDataPreprocessor):
    """Stacks ``(C, D, H, W)`` volumes into ``(N, C, D, H, W)``, padding every case at the end
    of each axis to the batch's largest size rounded up to ``size_divisor`` (the network's
    stride per axis); labels are padded with 255 (ignored). Records ``batch_input_shape``.

    Args:
        size_divisor: an int or one per axis (``(4, 32, 32)`` for H-DenseUNet's 3D branch).
        pad_val: image padding value (after intensity normalization, usually 0).
    """

    def __init__(self, size_divisor: Union[int, Sequence[int], None] = None, pad_val: float = 0.0,
                 non_blocking: bool = False):
        super().__init__(non_blocking=non_blocking)
        self.size_divisor = _per_axis(size_divisor, 'size_divisor')
        self.pad_val = pad_val

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data['inputs']
        samples: Optional[list] = data.get('data_samples')
        if isinstance(inputs, torch.Tensor):
            inputs = list(inputs)
        shapes = [tuple(x.shape[1:]) for x in inputs]
        if any(len(s) != 3 for s in shapes):
            raise BadDataError(f'VolumeDataPreProcessor: expected (C, D, H, W) volumes, got shapes {shapes}')
        target = [-(-max(s[i] for s in shapes) // d) * d for i, d in enumerate(self.size_divisor)]
        batch = []
        for i, x in enumerate(inputs):
            pad = self._pad_arg(x.shape[1:], target)
            batch.append(F.pad(x.float(), pad, value=self.pad_val) if any(pad) else x.float())
            if samples is not None:
                sample = samples[i]
                if 'gt_seg' in sample and any(pad):
                    sample.gt_seg = F.pad(sample.gt_seg, pad, value=IGNORE_INDEX)
                sample.set_metainfo(dict(batch_input_shape=tuple(target)))
        return dict(inputs=torch.stack(batch), data_samples=samples)

    @staticmethod
    def _pad_arg(shape, target):
        """``F.pad`` argument padding the end of D/H/W up to ``target`` (last axis first)."""
        pad = []
        for size, goal in zip(reversed(tuple(shape)), reversed(target)):
            pad += [0, goal - size]
        return pad
