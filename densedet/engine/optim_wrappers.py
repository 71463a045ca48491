"""Optimizer wrapper for mixed precision on CPU."""
from contextlib import contextmanager

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper

from densedet.errors import BadConfigError
from densedet.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """Mixed precision on CPU: forward under ``torch.autocast('cpu', bfloat16)``.

    bfloat16 has float32's exponent range, so unlike fp16 no loss scaling is needed;
    gradients and the optimizer state stay float32.
    """

    def __init__(self, dtype: str = 'bfloat16', **kwargs):
        super().__init__(**kwargs)
        if dtype not in ('bfloat16', torch.bfloat16):
            raise BadConfigError(f'CPUAmpOptimWrapper supports only bfloat16 autocast, got dtype={dtype!r}')
        self.cast_dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), torch.autocast(device_type='cpu', dtype=self.cast_dtype):
            yield
