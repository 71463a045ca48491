"""A densedet backbone inside mmseg's and mmdet's own models, built from configs."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope


def _build(cfg_path):
    cfg = Config.fromfile(cfg_path)
    init_default_scope(cfg.default_scope)
    from mmengine.registry import MODELS
    return cfg, MODELS.build(cfg.model)


def test_mmseg_upernet_with_rdnet_trains_one_step(repo_root):
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    cfg, model = _build(osp.join(repo_root, 'configs', 'upernet_rdnet_ade20k.py'))
    assert type(model).__name__ == 'EncoderDecoder' and type(model.backbone).__name__ == 'RDNet'
    assert type(model.decode_head).__name__ == 'UPerHead'
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64), ori_shape=(64, 64)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, 64, 64)))
        samples.append(s)
    model.train()
    losses = model.loss(torch.randn(2, 3, 64, 64), samples)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0


def test_mmdet_mask_rcnn_with_rdnet_trains_one_step(repo_root):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    cfg, model = _build(osp.join(repo_root, 'tests', 'data', 'configs', 'mask-rcnn_rdnet-t_mmdet.py'))
    assert type(model).__name__ == 'MaskRCNN' and type(model.backbone).__name__ == 'RDNet'
    h = w = 128
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), pad_shape=(h, w), ori_shape=(h, w),
                                         scale_factor=(1., 1.), batch_input_shape=(h, w)))
    inst = InstanceData()
    inst.bboxes = torch.tensor([[10., 10., 60., 70.], [50., 40., 120., 100.]])
    inst.labels = torch.tensor([0, 3])
    masks = torch.zeros(2, h, w, dtype=torch.uint8)
    masks[0, 10:70, 10:60] = 1
    masks[1, 40:100, 50:120] = 1
    inst.masks = BitmapMasks(masks.numpy(), h, w)
    sample.gt_instances = inst
    model.train()
    losses = model.loss(torch.randn(1, 3, h, w), [sample])
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v) for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.stem[0].weight.grad is not None


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
