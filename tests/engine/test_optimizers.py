import pytest
import torch.nn as nn
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

import densedet.engine  # noqa: F401
from densedet.models.backbones import RDNet


class _Segmentor(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = RDNet(arch='tiny')
        self.decode_head = nn.Conv2d(1040, 3, 1)


def _build(decay=0.9, lr=1e-3, wd=0.05, scope=None):
    cfg = dict(type='DenseLayerDecayConstructor',
               optim_wrapper_cfg=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=lr, weight_decay=wd)),
               paramwise_cfg=dict(decay_rate=decay, decay_type='stage_wise'))
    model = _Segmentor()
    if scope is None:
        constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(cfg)
    else:  # resolved from mmseg's / mmdet's registry, as their configs do
        import importlib
        registry = importlib.import_module(f'{scope}.registry').OPTIM_WRAPPER_CONSTRUCTORS
        constructor = registry.build(cfg)
    return model, constructor(model)


def test_stage_wise_lr_per_parameter():
    model, wrapper = _build()
    lr_of = {}
    wd_of = {}
    for group in wrapper.optimizer.param_groups:
        for name in group['param_names']:
            lr_of[name] = group['lr']
            wd_of[name] = group['weight_decay']
    top = 8  # RDNet-T: stem + 7 dense stages
    assert lr_of['backbone.stem.0.weight'] == pytest.approx(1e-3 * 0.9**top)
    for i in range(7):
        name = f'backbone.dense_stages.{i}.{0 if i == 0 else 2}.dense_block0.layers.layers.0.weight'
        assert lr_of[name] == pytest.approx(1e-3 * 0.9**(top - (i + 1))), name
    assert lr_of['decode_head.weight'] == pytest.approx(1e-3)
    # no weight decay on 1-D parameters (norms, biases, layer scale)
    assert wd_of['backbone.stem.1.weight'] == 0.0
    assert wd_of['backbone.dense_stages.3.2.dense_block1.gamma'] == 0.0
    assert wd_of['decode_head.bias'] == 0.0
    assert wd_of['backbone.stem.0.weight'] == 0.05
    assert len(lr_of) == sum(1 for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize('scope', ['mmseg', 'mmdet'])
def test_visible_from_mmseg_and_mmdet(scope):
    _, wrapper = _build(decay=0.8, scope=scope)
    assert min(g['lr'] for g in wrapper.optimizer.param_groups) == pytest.approx(1e-3 * 0.8**8)


def test_frozen_parameters_are_skipped():
    model = _Segmentor()
    model.backbone = RDNet(arch='tiny', frozen_stages=1)
    cfg = dict(type='DenseLayerDecayConstructor',
               optim_wrapper_cfg=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)),
               paramwise_cfg=dict(decay_rate=0.9))
    wrapper = OPTIM_WRAPPER_CONSTRUCTORS.build(cfg)(model)
    names = {n for g in wrapper.optimizer.param_groups for n in g['param_names']}
    assert not any(n.startswith('backbone.stem.') for n in names)


def test_backbone_without_groups_is_rejected():
    model = nn.Module()
    model.backbone = nn.Conv2d(1, 1, 1)
    cfg = dict(type='DenseLayerDecayConstructor',
               optim_wrapper_cfg=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)),
               paramwise_cfg=dict(decay_rate=0.9))
    with pytest.raises(TypeError, match='layer_group_id'):
        OPTIM_WRAPPER_CONSTRUCTORS.build(cfg)(model)
