"""A densedet backbone inside mmseg's and mmdet's own models, built from configs."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from test_configs import det_samples, seg_samples


def _build(cfg_path):
    cfg = Config.fromfile(cfg_path)
    init_default_scope(cfg.default_scope)
    from mmengine.registry import MODELS
    return cfg, MODELS.build(cfg.model)


def _train_step(model, inputs, samples):
    model.train()
    losses = model.loss(inputs, samples)
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v) for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0


def test_mmseg_upernet_with_rdnet_trains_one_step(repo_root):
    cfg, model = _build(osp.join(repo_root, 'configs', 'upernet_rdnet_ade20k.py'))
    assert type(model).__name__ == 'EncoderDecoder' and type(model.backbone).__name__ == 'RDNet'
    assert type(model.decode_head).__name__ == 'UPerHead'
    _train_step(model, torch.randn(2, 3, 64, 64), seg_samples(2, (64, 64), 150))


def test_mmseg_recipe_with_the_readme_snippet_trains_one_step(repo_root):
    # mmseg's own upernet_r50 ADE20K config (model.pretrained set, auxiliary head on ResNet's
    # third level) with README's snippet: tests/data/configs/upernet_rdnet-t_mmseg.py.
    from mmengine.model.utils import revert_sync_batchnorm
    cfg, model = _build(osp.join(repo_root, 'tests', 'data', 'configs', 'upernet_rdnet-t_mmseg.py'))
    assert type(model.backbone).__name__ == 'RDNet' and model.auxiliary_head.in_channels == 744
    _train_step(revert_sync_batchnorm(model), torch.randn(2, 3, 64, 64), seg_samples(2, (64, 64), 150))


def test_backbones_take_mmsegs_deprecated_pretrained_argument(tmp_path):
    from densedet.models import RDNet
    weights = RDNet('tiny').state_dict()
    torch.save({'state_dict': weights}, tmp_path / 'rdnet.pth')
    with pytest.warns(UserWarning, match='pretrained is deprecated'):
        backbone = RDNet('tiny', pretrained=str(tmp_path / 'rdnet.pth'))
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint=str(tmp_path / 'rdnet.pth'))
    backbone.init_weights()
    assert all(torch.equal(backbone.state_dict()[k], v) for k, v in weights.items())
    with pytest.raises(ValueError, match='init_cfg and pretrained'):
        RDNet('tiny', pretrained='a.pth', init_cfg=dict(type='Pretrained', checkpoint='a.pth'))


@pytest.mark.parametrize('family,args', [('DenseNet', dict(arch='121')), ('VoVNet', dict(arch='19')),
                                         ('HarDNet', dict(arch='39')), ('DPN', dict(arch='68')),
                                         ('DLA', dict(arch='34')), ('FCDenseNet', dict(arch='56')),
                                         ('UNetEncoder', dict())])
def test_every_family_maps_pretrained_to_init_cfg(family, args):
    import densedet.models.backbones as backbones
    with pytest.warns(UserWarning, match=f'{family}: pretrained is deprecated'):
        backbone = getattr(backbones, family)(pretrained='weights.pth', **args)
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint='weights.pth')


def test_mmdet_mask_rcnn_with_rdnet_trains_one_step(repo_root):
    cfg, model = _build(osp.join(repo_root, 'tests', 'data', 'configs', 'mask-rcnn_rdnet-t_mmdet.py'))
    assert type(model).__name__ == 'MaskRCNN' and type(model.backbone).__name__ == 'RDNet'
    _train_step(model, torch.randn(1, 3, 128, 128), det_samples(1, (128, 128)))


def test_unknown_type_names_the_key():
    init_default_scope('mmseg')
    from mmengine.registry import MODELS
    with pytest.raises(KeyError, match='RDNetX'):
        MODELS.build(dict(type='EncoderDecoder', backbone=dict(type='RDNetX'),
                          decode_head=dict(type='FCNHead', in_channels=8, channels=8, num_classes=2)))


def test_unknown_arch_from_config():
    init_default_scope('mmdet')
    from mmengine.registry import MODELS
    with pytest.raises(KeyError, match="unknown arch 'giant'"):
        MODELS.build(dict(type='RDNet', arch='giant'))
