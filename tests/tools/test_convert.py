"""tools/convert/rdnet_official_to_densedet.py on a checkpoint written with the official key layout."""
import os.path as osp

import pytest
import timm
import torch
from mmengine.config import Config
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from densedet.errors import BadCheckpointError

from scripts import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
convert_main = load_script('tools/convert/rdnet_official_to_densedet.py').main


def _official_checkpoint(path, model, stem_layout):
    """What naver-ai/rdnet's mmdet 2.x code saves: the detector's heads under their mmdet names,
    the backbone as ``backbone.timm_model.<timm features_only names>`` plus
    ``backbone.norm_modules.i``. Returns the timm network and the GroupNorms used."""
    torch.manual_seed(0)
    timm_model = timm.create_model('rdnet_tiny', features_only=True, pretrained=False).eval()
    norms = torch.nn.ModuleList(torch.nn.GroupNorm(1, c) for c in timm_model.feature_info.channels())
    with torch.no_grad():
        for p in list(timm_model.parameters()) + list(norms.parameters()):
            p.add_(torch.randn_like(p) * 0.05)  # away from the init, so a wrong mapping shows
    state = {k: v for k, v in model.state_dict().items() if not k.startswith('backbone.')}
    for key, value in timm_model.state_dict().items():
        if stem_layout == 'official' and key.startswith('stem_'):
            key = 'stem.stem.' + key[len('stem_'):]  # the official PatchifyStem module
        state['backbone.timm_model.' + key] = value
    for key, value in norms.state_dict().items():
        state['backbone.norm_modules.' + key] = value
    torch.save(dict(state_dict=state, meta=dict(mmdet_version='2.25.3'), optimizer=dict(state={})), path)
    return timm_model, norms


@pytest.mark.parametrize('stem_layout', ['official', 'timm'])
def test_converted_checkpoint_loads_and_matches_official_backbone(tmp_path, stem_layout):
    config = osp.join(ROOT, 'configs', 'mask-rcnn_rdnet_coco.py')
    cfg = Config.fromfile(config)
    init_default_scope('mmdet')
    from mmengine.registry import MODELS
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    src, dst = tmp_path / 'official.pth', tmp_path / 'converted.pth'
    timm_model, norms = _official_checkpoint(src, model, stem_layout)
    heads_before = {k: v.clone() for k, v in torch.load(src, weights_only=False)['state_dict'].items()
                    if k.startswith('roi_head.')}

    convert_main([str(src), str(dst), '--config', config])
    load_checkpoint(model, str(dst), map_location='cpu', strict=True)

    x = torch.randn(1, 3, 128, 160)
    with torch.no_grad():
        ours = model.backbone(x)
        ref = [norm(f) for norm, f in zip(norms, timm_model(x))]
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    for k, v in heads_before.items():
        torch.testing.assert_close(model.state_dict()[k], v)


def test_mismatching_config_is_an_error_naming_keys(tmp_path):
    init_default_scope('mmdet')
    from mmengine.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'mask-rcnn_rdnet_coco.py'))
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    src = tmp_path / 'official.pth'
    _official_checkpoint(src, model, 'official')
    with pytest.raises(BadCheckpointError,
                       match=r'does not match .*cascade-mask-rcnn_rdnet_coco.py: missing \[.*roi_head'):
        convert_main([str(src), str(tmp_path / 'x.pth'), '--config',
                      osp.join(ROOT, 'configs', 'cascade-mask-rcnn_rdnet_coco.py')])
    assert not (tmp_path / 'x.pth').exists()
