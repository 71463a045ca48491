"""Low-precision inference (``--amp`` of tools/test.py, tools/infer.py, tools/infer_volume.py and
the inference APIs): the network runs in bf16 on CPU, and what comes out agrees with float32."""
import os

import numpy as np
import pytest
import torch
from mmengine.config import Config

from densedet.apis import inference, inference_volume, init_model, init_volume_model
from densedet.apis.config import enable_test_amp
from densedet.apis.precision import autocast_dtype, inference_autocast


def _conv_dtypes(model):
    """Records the output dtype of every convolution during the next forward passes."""
    seen = []
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)):
            m.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    return seen


def test_autocast_rule_and_test_loop_flag():
    assert autocast_dtype('cpu') == torch.bfloat16 and autocast_dtype('cuda') == torch.float16
    with inference_autocast('cpu'):
        assert torch.is_autocast_enabled('cpu') and torch.get_autocast_dtype('cpu') == torch.bfloat16
    with inference_autocast('cpu', enabled=False):
        assert not torch.is_autocast_enabled('cpu')
    cfg = Config(dict(test_cfg=dict(type='TestLoop')))
    assert enable_test_amp(cfg) is True
    assert cfg.test_cfg == dict(type='TestLoop', fp16=True)
    detector = Config(dict(default_scope='mmdet', test_cfg=dict(type='TestLoop')))
    assert enable_test_amp(detector) is False  # float32 loop: tools/test.py autocasts backbone + neck only
    assert detector.test_cfg == dict(type='TestLoop')


def test_detector_runs_backbone_and_neck_in_bf16_and_decodes_boxes_in_float32(repo_root, coco_demo):
    """bf16 boxes would move in 2 px steps at x = 300 (and mmdet's CocoMetric cannot read them)."""
    torch.manual_seed(0)
    model = init_model(os.path.join(repo_root, 'configs/demo/mask-rcnn_rdnet_coco_demo.py'))
    image = os.path.join(coco_demo, 'val2017', sorted(os.listdir(os.path.join(coco_demo, 'val2017')))[0])
    backbone_dtypes, head_dtypes = _conv_dtypes(model.backbone), _conv_dtypes(model.roi_head)
    full = inference(model, image).pred_instances
    low = inference(model, image, amp=True).pred_instances
    assert set(backbone_dtypes) == {torch.float32, torch.bfloat16}  # the float32 pass, then the bf16 one
    assert set(head_dtypes) == {torch.float32}
    assert low.bboxes.dtype == low.scores.dtype == torch.float32 and len(full.bboxes) > 0
    assert 'extract_feat' not in vars(model)  # the detector is left as it was


def test_image_inference_in_bf16_agrees_with_float32(repo_root, demo_data):
    torch.manual_seed(0)
    model = init_model(os.path.join(repo_root, 'configs/demo/upernet_rdnet_ade20k_demo.py'))
    image = os.path.join(demo_data, 'images', 'validation', 'ADE_demo_v_00000.jpg')
    dtypes = _conv_dtypes(model)
    full = inference(model, image)
    assert set(dtypes) == {torch.float32}
    dtypes.clear()
    low = inference(model, image, amp=True)
    assert set(dtypes) == {torch.bfloat16}
    logits_full, logits_low = full.seg_logits.data.float(), low.seg_logits.data.float()
    assert logits_low.shape == logits_full.shape
    # random weights give near-tied logits: compare the logits, not the argmax
    assert (logits_low - logits_full).abs().max() < 0.05 * logits_full.abs().max()


@pytest.mark.parametrize('tta', [False, True])
def test_volume_inference_in_bf16_agrees_with_float32(repo_root, tmp_path, tta):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    from nibabel.testing import data_path
    init_default_scope('mmseg')
    cfg = Config.fromfile(os.path.join(repo_root, 'configs/demo/denseunet3d_msd-liver_demo.py'))
    torch.manual_seed(0)
    net = MODELS.build(cfg.model)
    net.init_weights()
    ckpt = str(tmp_path / 'demo.pth')
    torch.save(dict(state_dict=net.state_dict(), meta={}), ckpt)
    cfg.model.test_cfg['keep_logits'] = True
    model = init_volume_model(cfg, ckpt, tta=tta)
    src = os.path.join(data_path, 'anatomical.nii')
    dtypes = _conv_dtypes(model)
    full = inference_volume(model, src)
    low = inference_volume(model, src, out_path=str(tmp_path / 'low.nii.gz'), amp=True)
    assert torch.bfloat16 in dtypes
    assert low.seg_logits.dtype == torch.float32  # windows blended in float32
    assert (low.seg_logits - full.seg_logits).abs().max() < 0.05 * full.seg_logits.abs().max()
    assert np.mean((low.pred_seg == full.pred_seg).numpy()) > 0.9
    assert os.path.isfile(tmp_path / 'low.nii.gz')
