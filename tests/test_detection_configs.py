"""The RDNet COCO recipes: mmdet's Mask / Cascade Mask R-CNN with RDNet-T built from the configs,
one CPU training step and prediction on a real-size image; the recipe values."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from test_configs import det_samples

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _model(name):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    init_default_scope(cfg.default_scope)
    from mmengine.registry import MODELS
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()
    return cfg, model


@pytest.mark.parametrize('name', ['mask-rcnn_rdnet_coco.py', 'cascade-mask-rcnn_rdnet_coco.py'])
def test_train_step_and_predict_on_real_size_images(name):
    torch.manual_seed(0)
    cfg, model = _model(name)
    assert type(model.backbone).__name__ == 'RDNet' and model.backbone.out_norms is not None
    batch = dict(inputs=[torch.randint(0, 256, (3, 480, 640), dtype=torch.uint8)],
                 data_samples=det_samples(1, (480, 640)))
    model.train()
    data = model.data_preprocessor(batch, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    loss.backward()
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0
    # the last layer of the stride-4 level (P2 gets the small ground-truth boxes' RoIs and RPN
    # positives); the stride-32 level can draw no sampled anchor from one image
    assert model.backbone.dense_stages[0][-1].dense_block2.layers.layers[0].weight.grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        results = model.test_step(batch)
    assert len(results) == 1
    for r in results:
        pred = r.pred_instances
        assert pred.bboxes.shape[1] == 4 and len(pred.scores) == len(pred.labels) == len(pred.bboxes)
        assert pred.masks.shape[1:] == (480, 640)


def test_roi_features_are_read_from_the_right_places():
    # Regression: RDNet's channels-last outputs reached mmcv's compiled RoIAlign, which reads dense
    # NCHW memory, so every RoI head learnt from garbage. The detector's RoI features are compared
    # with an independent computation: torchvision's pure-PyTorch RoIAlign (tensor indexing, not the
    # C++ kernel that densedet/ops/mmcv_ext.py serves to mmcv without compiled ops).
    from mmdet.structures.bbox import bbox2roi
    from torchvision.ops.roi_align import _roi_align
    torch.manual_seed(0)
    _, model = _model('mask-rcnn_rdnet_coco.py')
    model.eval()
    rois = bbox2roi([torch.tensor([[8., 10., 60., 50.], [30., 4., 90., 70.]]),
                     torch.tensor([[0., 0., 40., 44.], [50., 20., 120., 90.]])])
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(2, 3, 128, 160))
        ours = model.roi_head.bbox_roi_extractor(feats[:4], rois)
    assert model.roi_head.bbox_roi_extractor.map_roi_levels(rois, 4).tolist() == [0, 0, 0, 0]
    torch.testing.assert_close(ours, _roi_align(feats[0], rois, 1 / 4, 7, 7, 0, True), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name,arch,lr,wd,decay,dp,warmup', [
    ('mask-rcnn_rdnet_coco.py', 'tiny', 3e-4, 0.05, 0.95, 0.2, 1500),
    ('cascade-mask-rcnn_rdnet_coco.py', 'tiny', 8e-5, 0.05, 0.8, 0.4, 1000),
    ('cascade-mask-rcnn_rdnet-s_coco.py', 'small', 8e-5, 0.1, 0.7, 0.4, 1000),
    ('cascade-mask-rcnn_rdnet-b_coco.py', 'base', 8e-5, 0.05, 0.7, 0.6, 1000),
])
def test_recipe_values(name, arch, lr, wd, decay, dp, warmup):
    from densedet.models import RDNet
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    assert cfg.model.backbone.arch == arch and cfg.model.backbone.drop_path_rate == dp
    assert cfg.model.backbone.out_norm_cfg == dict(type='GN', num_groups=1)
    assert list(cfg.model.neck.in_channels) == list(RDNet(arch).out_channels)
    opt = cfg.optim_wrapper
    assert opt.constructor == 'DenseLayerDecayConstructor' and opt.optimizer.type == 'AdamW'
    assert (opt.optimizer.lr, opt.optimizer.weight_decay, opt.paramwise_cfg.decay_rate) == (lr, wd, decay)
    assert cfg.train_cfg.max_epochs == 36
    warm, steps = cfg.param_scheduler
    assert warm.end == warmup and list(steps.milestones) == [27, 33]
    assert any(t['type'] == 'RandomChoice' for t in cfg.train_dataloader.dataset.pipeline)
    if name.startswith('cascade'):
        heads = cfg.model.roi_head.bbox_head
        assert [h.loss_bbox.type for h in heads] == ['GIoULoss'] * 3 and all(h.reg_decoded_bbox for h in heads)
        assert [h.num_shared_convs for h in heads] == [4] * 3
