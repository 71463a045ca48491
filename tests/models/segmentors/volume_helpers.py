"""Small volume models and samples shared by the segmentor tests."""
import torch
from mmengine.registry import init_default_scope

from densedet.structures import VolumeDataSample

TINY_DENSEUNET = dict(
    type='VolumeEncoderDecoder',
    backbone=dict(type='DenseNet', arch=dict(growth_rate=4, block_config=(1, 1, 1, 1), stem_channels=8), in_channels=1,
                  spatial_dims=3, transition_pool_size=(1, 2, 2), stem_output=True, out_indices=(0, 1, 2, 3, 4)),
    decode_head=dict(type='DenseUNetHead', in_channels=[8, 12, 10, 9, 8], up_channels=(8, 8, 8, 8, 8),
                     scale_factors=[(1, 2, 2)] * 3 + [(2, 2, 2)] * 2, spatial_dims=3, num_classes=3),
    losses=[dict(type='CrossEntropyLoss'), dict(type='SoftDiceLoss')],
    test_cfg=dict(roi_size=(8, 32, 32), overlap=0.5, sw_batch_size=2))


def build(cfg=TINY_DENSEUNET, **test_cfg):
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = dict(cfg, test_cfg=dict(cfg.get('test_cfg', {}), **test_cfg))
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def samples(n, shape, classes=3, **meta):
    out = []
    for _ in range(n):
        s = VolumeDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, **meta))
        s.gt_seg = torch.randint(0, classes, shape)
        out.append(s)
    return out
