"""Layer-wise (stage-wise) learning-rate decay for densedet backbones."""
from typing import List

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor

from densedet.errors import BadConfigError
from densedet.registry import OPTIM_WRAPPER_CONSTRUCTORS

from .wrappers import unwrap_model


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class DenseLayerDecayConstructor(DefaultOptimWrapperConstructor):
    """Stage-wise learning-rate decay, as in the official RDNet recipes.

    Works with any backbone that defines ``num_layer_groups`` and
    ``layer_group_id(param_name)``: every densedet backbone does (the stem is group 0, output
    level ``i`` and what leads to it group ``i + 1``, see ``DenseBackbone.layer_group_id``; RDNet
    keeps the official recipe's groups: the stem, then one per dense stage). With ``G = num_layer_groups`` and decay
    ``d``, a backbone parameter in group ``g`` gets ``lr * d ** (G - g)``; every
    parameter outside the backbone (necks, heads) gets ``lr``. One-dimensional
    parameters (norms, biases, layer scales) get no weight decay.

    ``paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise')``.

    Differences from the official mmseg 0.x code, on purpose: the number of
    groups is read from the model (the official S/B configs reuse tiny's 7), and
    heads get exactly ``lr`` (the official code gives them ``lr / d**2``).
    """

    def add_params(self, params: List[dict], module: nn.Module, **kwargs) -> None:
        module = unwrap_model(module)
        decay_rate = self.paramwise_cfg.get('decay_rate', 1.0)
        decay_type = self.paramwise_cfg.get('decay_type', 'stage_wise')
        if decay_type != 'stage_wise':
            raise BadConfigError("DenseLayerDecayConstructor supports decay_type='stage_wise' only, "
                                 f'got {decay_type!r}')
        backbone = getattr(module, 'backbone', None)
        if backbone is None or not hasattr(backbone, 'layer_group_id'):
            raise TypeError(f'DenseLayerDecayConstructor needs model.backbone with layer_group_id(); '
                            f'{type(module).__name__}.backbone is {type(backbone).__name__}')
        top = backbone.num_layer_groups
        groups = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            if name.startswith('backbone.'):
                group_id = min(backbone.layer_group_id(name[len('backbone.'):]), top)
            else:
                group_id = top
            no_decay = param.ndim == 1 or name.endswith('.bias')
            key = (group_id, no_decay)
            if key not in groups:
                scale = decay_rate**(top - group_id)
                groups[key] = dict(params=[], param_names=[], lr=self.base_lr * scale, lr_scale=scale,
                                   weight_decay=0.0 if no_decay else self.base_wd,
                                   group_name=f'layer_{group_id}_{"no_decay" if no_decay else "decay"}')
            groups[key]['params'].append(param)
            groups[key]['param_names'].append(name)
        print_log(f'DenseLayerDecayConstructor: {len(groups)} parameter groups, decay {decay_rate}, '
                  f'{top} backbone groups', logger='current')
        params.extend(groups[k] for k in sorted(groups))
