"""The model inside mmengine's wrappers: DDP-style model wrappers (``MODEL_WRAPPERS``) and
test-time augmentation (``BaseTTAModel``, what ``tools/test.py --tta`` runs), both holding the
model as ``.module``. Checkpoint keys, layer-decay groups, compiled parts and low-precision
features belong to that model."""
import torch.nn as nn


def is_wrapper(module: nn.Module) -> bool:
    from mmengine.model import BaseTTAModel, is_model_wrapper
    return is_model_wrapper(module) or isinstance(module, BaseTTAModel)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside any number of wrappers."""
    while is_wrapper(model):
        model = model.module
    return model
