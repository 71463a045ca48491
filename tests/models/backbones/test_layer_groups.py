"""Layer-wise lr decay for every backbone family: the groups derived from ``feature_info`` follow
the order the modules run in, and DenseLayerDecayConstructor gives each family's UperNet config
learning rates that rise from the stem to the head."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS, init_default_scope

from densedet.models.backbones import DLA, DPN, DenseNet, FCDenseNet, HarDNet, RDNet, UNetEncoder, VoVNet

FAMILIES = {
    'rdnet': lambda: RDNet(arch='tiny'),
    'densenet': lambda: DenseNet(arch='121'),
    'densenet_stem_output': lambda: DenseNet(arch='121', stem_output=True, out_indices=(0, 1, 2, 3, 4)),
    'densenet_d8': lambda: DenseNet(arch='121', output_stride=8),
    'vovnet': lambda: VoVNet(arch='19'),
    'hardnet': lambda: HarDNet(arch='39', depthwise=True),
    'dpn': lambda: DPN(arch='68'),
    'dla': lambda: DLA(arch='34'),
    'fcdensenet': lambda: FCDenseNet(arch='56'),
    'unet_encoder': lambda: UNetEncoder(channels=(8, 16, 32)),
}


def _execution_order(backbone, size=64):
    """Names of the parameters in the order their modules first run."""
    order = []
    hooks = [m.register_forward_pre_hook(lambda mod, args, name=name: order.append((name, mod)))
             for name, m in backbone.named_modules() if any(True for _ in m.parameters(recurse=False))]
    backbone.eval()
    with torch.no_grad():
        backbone(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    seen, names = set(), []
    for module_name, module in order:
        if module_name not in seen:
            seen.add(module_name)
            names += [f'{module_name}.{p}' for p, _ in module.named_parameters(recurse=False)]
    return names


@pytest.mark.parametrize('family', FAMILIES)
def test_groups_rise_in_execution_order(family):
    backbone = FAMILIES[family]()
    names = _execution_order(backbone)
    assert set(names) == {n for n, _ in backbone.named_parameters()}  # every parameter runs
    groups = [backbone.layer_group_id(n) for n in names]
    assert groups == sorted(groups), [(n, g) for n, g in zip(names, groups)]
    assert groups[0] == (0 if family != 'unet_encoder' else 1)  # UNetEncoder has no stem: level 0 comes first
    assert set(groups) <= set(range(backbone.num_layer_groups + 1))
    # the module of every output level lies in exactly one group, and the levels' groups rise
    # (DenseNet's stem output level is a ReLU: no parameters, no group)
    level_groups = []
    for info in backbone.feature_info:
        owned = {backbone.layer_group_id(n) for n in names if n.startswith(info['module'] + '.')}
        has_parameters = any(True for _ in backbone.get_submodule(info['module']).parameters())
        assert len(owned) == int(has_parameters), (info['module'], owned)
        level_groups += owned
    assert level_groups == sorted(set(level_groups))
    with pytest.raises(KeyError, match='no parameter named'):
        backbone.layer_group_id('missing.weight')


UPERNET_CONFIGS = ['configs/upernet_rdnet_ade20k.py', 'configs/densenet/upernet_densenet121_ade20k.py',
                   'configs/dla/upernet_dla34_ade20k.py', 'configs/dpn/upernet_dpn92_ade20k.py',
                   'configs/hardnet/upernet_hardnet68_ade20k.py', 'configs/vovnet/upernet_vovnet39_ade20k.py']


@pytest.mark.parametrize('config', UPERNET_CONFIGS)
def test_layer_decay_constructor_on_each_family_upernet(repo_root, config):
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(f'{repo_root}/{config}')
    model = MODELS.build(cfg.model)
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='DenseLayerDecayConstructor', paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise'),
        optim_wrapper_cfg=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))))
    wrapper = constructor(model)
    lr_of = {name: group['lr'] for group in wrapper.optimizer.param_groups for name in group['param_names']}
    backbone = model.backbone
    order = [f'backbone.{n}' for n in _execution_order(backbone, size=128)]
    lrs = [lr_of[n] for n in order if n in lr_of]
    assert lrs == sorted(lrs)  # stem to last level
    top = backbone.num_layer_groups
    assert min(lrs) == pytest.approx(1e-3 * 0.9**top)  # the stem
    assert len({round(lr, 12) for lr in lrs}) >= len(backbone.feature_info)  # one rate per level at least
    head = [lr for name, lr in lr_of.items() if not name.startswith('backbone.')]
    assert head and all(lr == pytest.approx(1e-3) for lr in head)
    last_level = 'backbone.' + backbone.feature_info[-1]['module'] + '.'
    last = [lr for name, lr in lr_of.items() if name.startswith(last_level)]
    assert last and all(lr == pytest.approx(1e-3 * 0.9) for lr in last)  # one step below the head
