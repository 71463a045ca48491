"""DLA-Up: parameters and key layout of the official dla34up, bilinear upsamplers, odd sizes, bad input."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from official_layouts import dla34up, random_state

from densedet.errors import BadConfigError, BadDataError
from densedet.models.decode_heads import DLAUpHead, dlaup_official_to_mmseg
from densedet.models.necks.dla_up import bilinear_upsampler

from scripts import load_script

CONFIG = 'configs/dla/dlaup_dla34_cityscapes.py'


def _model(num_classes=19):
    init_default_scope('mmseg')
    cfg = Config.fromfile(CONFIG).model
    cfg.backbone.norm_cfg = cfg.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.decode_head.num_classes = num_classes
    return MODELS.build(cfg)


def _params(shapes):
    return sum(torch.Size(s).numel() for k, s in shapes.items()
               if not k.endswith(('running_mean', 'running_var', 'num_batches_tracked')))


def test_parameters_equal_the_official_dla34up():
    official = dla34up(19)
    unused = {k: s for k, s in official.items() if k.startswith(('base.fc.', 'up.'))
              or ('.project.' in k and k.split('.project.')[0] + '.root.conv.weight' not in official)}
    # the ImageNet classifier (512 x 1000 + 1000), the fixed 4x4 bilinear upsampler (19 x 16) and the
    # projections of the depth-2 trees level3 / level4 (64->128, 128->256 with BN) that the official never calls
    assert _params(unused) == 513_000 + 304 + (64 * 128 + 256) + (128 * 256 + 512)
    ours = sum(p.numel() for p in _model().parameters())
    assert ours == _params(official) - _params(unused) == 17_540_131


def test_official_checkpoint_layout_loads_key_for_key(tmp_path):
    torch.manual_seed(0)
    official = random_state(dla34up(19))
    src, dst = tmp_path / 'dla34up.pth', tmp_path / 'converted.pth'
    torch.save(dict(state_dict={'module.' + k: v for k, v in official.items()}), src)
    load_script('tools/convert/dlaup_official_to_densedet.py').main([str(src), str(dst), '--config', CONFIG])
    model = _model()
    result = model.load_state_dict(torch.load(dst)['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    ours = model.state_dict()
    for key, value in dlaup_official_to_mmseg(official).items():
        torch.testing.assert_close(ours[key], value, msg=key)
    with pytest.raises(BadConfigError, match="key 'aux.0.weight' is not part of DLA-Up"):
        dlaup_official_to_mmseg({'aux.0.weight': torch.zeros(1)})


def test_upsamplers_start_bilinear():
    x = torch.randn(1, 3, 5, 7)
    for factor in (2, 4, 8):
        up = bilinear_upsampler(3, factor)(x)
        assert up.shape[2:] == (5 * factor, 7 * factor)
        # away from the border a bilinear kernel reproduces align_corners=False interpolation
        ref = torch.nn.functional.interpolate(x, scale_factor=factor, mode='bilinear', align_corners=False)
        inner = slice(factor, -factor)
        torch.testing.assert_close(up[..., inner, inner], ref[..., inner, inner])


@pytest.mark.parametrize('size', [(97, 161), (64, 64), (33, 47)])
def test_forward_backward_at_odd_sizes(size):
    model = _model(num_classes=4).train()
    logits = model._forward(torch.randn(2, 3, *size))
    assert logits.shape == (2, 4, -(-size[0] // 2), -(-size[1] // 2))  # stride 2, DLA's level 1
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_stride_4_variant_and_bad_inputs():
    head = DLAUpHead(in_channels=[64, 128, 256, 512], num_classes=3)  # official down_ratio=4: levels 2..5
    feats = [torch.randn(1, c, 64 // s, 64 // s) for c, s in ((64, 4), (128, 8), (256, 16), (512, 32))]
    assert head(feats).shape == (1, 3, 16, 16)
    with pytest.raises(BadDataError, match=r'DLAUpHead: inputs have \[256, 512, 1024, 2048\] channels'):
        head([torch.randn(1, c * 4, 64 // s, 64 // s) for c, s in ((64, 4), (128, 8), (256, 16), (512, 32))])
    with pytest.raises(BadDataError, match='each level must have half the resolution of the previous one'):
        head([torch.randn(1, c, 16, 16) for c in (64, 128, 256, 512)])
    with pytest.raises(BadConfigError, match='in_channels needs at least two levels'):
        DLAUpHead(in_channels=[64], num_classes=3)
