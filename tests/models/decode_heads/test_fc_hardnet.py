"""FC-HarDNet-70: structure parity with the official network, its checkpoint layout, odd sizes, bad input."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from official_layouts import fchardnet70, random_state

from densedet.errors import BadConfigError, BadDataError
from densedet.models.decode_heads import FCHarDNetHead, fchardnet_official_to_mmseg

from scripts import load_script


def _model(num_classes=19, norm='BN'):
    init_default_scope('mmseg')
    cfg = Config.fromfile('configs/_base_/models/fchardnet70.py').model
    cfg.backbone.norm_cfg = cfg.decode_head.norm_cfg = dict(type=norm, requires_grad=True)
    cfg.decode_head.num_classes = num_classes
    return MODELS.build(cfg)


def _macs(model, shape):
    """Multiply-adds of every conv (the official count: 35.4 GMACs at 1024x2048)."""
    total = []

    def hook(module, inputs, output):
        k = module.weight[0].numel()  # in / groups x kh x kw
        total.append(output.numel() * k)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model._forward(torch.randn(1, 3, *shape))
    for h in handles:
        h.remove()
    return sum(total)


def _official_stride(key):
    """Output stride of an official FC-HarDNet-70 conv, from its key: stem convs 0-3 at 2, 2, 4, 4; then
    block / 1x1 conv / pooling triples at 4, 8, 16, 32 and the last pair at 64; the up path at 32 .. 4."""
    part, index = key.split('.')[:2]
    if part == 'base':
        index = int(index)
        return (2, 2, 4, 4)[index] if index < 4 else 4 * 2**((index - 4) // 3)
    return 4 if part == 'finalConv' else 32 // 2**int(index)


def test_parameters_and_macs_equal_the_official_network():
    model = _model().eval()
    official = fchardnet70(19)
    official_params = sum(torch.Size(s).numel() for k, s in official.items()
                          if not k.endswith(('running_mean', 'running_var', 'num_batches_tracked')))
    ours = sum(p.numel() for p in model.parameters())
    assert ours == official_params == 4_119_257  # README: 4.1 M
    h, w = 1024, 2048
    official_macs = sum(torch.Size(s).numel() * (h // _official_stride(k)) * (w // _official_stride(k))
                        for k, s in official.items() if len(s) == 4)
    # conv MACs scale with the area for sizes divisible by the stride (64): count at 1/16 of 1024x2048
    assert 16 * _macs(model, (h // 4, w // 4)) == official_macs == 35_217_426_432
    # the README's 35.4 GMACs also counts the BN / activation / pooling / upsampling element operations
    assert abs(official_macs / 35.4e9 - 1) < 0.01


def test_official_checkpoint_layout_loads_key_for_key(tmp_path):
    """The official state dict (as hardnet70_cityscapes_model.pkl stores it, DataParallel prefix and all),
    written independently of densedet: every key is consumed, none of ours is left at its init."""
    torch.manual_seed(0)
    official = {'module.' + k: v for k, v in random_state(fchardnet70(19)).items()}
    src, dst = tmp_path / 'hardnet70_cityscapes_model.pkl', tmp_path / 'fchardnet70.pth'
    torch.save(dict(epoch=90000, model_state=official, optimizer_state={}), src)
    convert = load_script('tools/convert/fchardnet_official_to_densedet.py').main
    convert([str(src), str(dst), '--config', 'configs/hardnet/fchardnet70_cityscapes.py'])
    model = _model()
    result = model.load_state_dict(torch.load(dst)['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    ours = model.state_dict()
    assert len(ours) == len(official)
    for key, value in fchardnet_official_to_mmseg(official).items():
        torch.testing.assert_close(ours[key], value, msg=key)
    with pytest.raises(BadConfigError, match="key 'aux.weight' is not part of FC-HarDNet"):
        fchardnet_official_to_mmseg({'aux.weight': torch.zeros(1)})


@pytest.mark.parametrize('size', [(97, 161), (64, 64), (65, 131)])  # stride 64: at least 64 pixels
def test_forward_backward_at_odd_sizes(size):
    model = _model(num_classes=5).train()
    logits = model._forward(torch.randn(2, 3, *size))
    assert logits.shape[:2] == (2, 5) and logits.shape[2] == -(-size[0] // 4) and logits.shape[3] == -(-size[1] // 4)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_head_with_incompatible_backbone_outputs():
    head = FCHarDNetHead(in_channels=[48, 78, 160, 214, 320], num_classes=3)
    feats = [torch.randn(1, c, 64 // s, 64 // s) for c, s in ((256, 4), (512, 8), (1024, 16), (1024, 32), (8, 64))]
    with pytest.raises(BadDataError, match=r'FCHarDNetHead: inputs have \[256, 512, 1024, 1024, 8\] channels '
                                           r'but in_channels is \[48, 78, 160, 214, 320\]'):
        head(feats)
    with pytest.raises(BadConfigError, match='5 inputs give 4 skips, so growth and num_layers need 4 entries'):
        FCHarDNetHead(in_channels=[48, 78, 160, 214, 320], growth=(10, 16), num_classes=3)


def test_fc70_encoder_levels_and_unknown_arch():
    from densedet.models.backbones import HarDNet
    encoder = HarDNet(arch='fc70', out_indices=None)
    assert [(i['num_chs'], i['reduction']) for i in encoder.feature_info] == [(48, 4), (78, 8), (160, 16), (214, 32),
                                                                               (320, 64)]
    assert isinstance(encoder.base[0].relu, torch.nn.ReLU) and encoder.output_stride == 64
    with pytest.raises(KeyError, match=r"unknown arch 'fc71'; choose one of \['39', '68', '85', 'fc70'\]"):
        HarDNet(arch='fc71')
