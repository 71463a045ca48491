"""H-DenseUNet: slice stacking, the paper's architecture numbers, the three training stages."""
import copy

import pytest
import torch
from mmengine.config import Config
from volume_helpers import build, samples

from densedet.models.segmentors import slices_to_volume, slices_with_neighbours
from densedet.structures import VolumeDataSample

TINY = dict(
    type='HDenseUNet',
    num_classes=3,
    encoder2d=dict(type='DenseNet', arch=dict(growth_rate=4, block_config=(1, 1, 1, 1), stem_channels=8),
                   in_channels=3, stem_output=True, out_indices=(0, 1, 2, 3, 4)),
    decoder2d=dict(type='DenseUNetHead', in_channels=[8, 12, 10, 9, 8], up_channels=(8, 8, 8, 8, 6), num_classes=3,
                   last_dropout=0.3),
    encoder3d=dict(type='DenseNet', arch=dict(growth_rate=4, block_config=(1, 1, 1, 1), stem_channels=8),
                   in_channels=4, spatial_dims=3, transition_pool_size=(1, 2, 2), stem_output=True,
                   out_indices=(0, 1, 2, 3, 4)),
    decoder3d=dict(type='DenseUNetHead', in_channels=[8, 12, 10, 9, 8], up_channels=(8, 8, 8, 8, 6),
                   scale_factors=[(1, 2, 2)] * 3 + [(2, 2, 2)] * 2, spatial_dims=3, num_classes=3),
    test_cfg=dict(roi_size=(4, 32, 32)))


def tiny(stage):
    return build(dict(copy.deepcopy(TINY), stage=stage))


def test_slices_with_neighbours_repeats_the_edges():
    volume = torch.arange(4.0).view(1, 1, 4, 1, 1).expand(2, 1, 4, 2, 3).contiguous()
    volume[1] += 10
    stacks = slices_with_neighbours(volume)
    assert stacks.shape == (8, 3, 2, 3)
    assert stacks[:4, :, 0, 0].tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]]
    assert stacks[4, :, 0, 0].tolist() == [10, 10, 11]
    assert torch.equal(slices_to_volume(stacks[:, 1:2], 2), volume)
    assert slices_with_neighbours(volume, context=2).shape == (8, 5, 2, 3)


def test_paper_architecture(repo_root):
    """The released code's widths: 2D DenseNet-161 boxes 96/384/768/2112/2208, decoder
    768/384/96/96/64; 3D boxes 96/192/224/496/504, decoder 504/224/192/96/64, 4 input channels."""
    from mmseg.registry import MODELS
    cfg = Config.fromfile(f'{repo_root}/configs/hdenseunet_lits.py')
    model = MODELS.build(cfg.model)
    assert [f['num_chs'] for f in model.encoder2d.feature_info] == [96, 384, 768, 2112, 2208]
    assert [f['num_chs'] for f in model.encoder3d.feature_info] == [96, 192, 224, 496, 504]
    assert [c[0].out_channels for c in model.decoder2d.up_convs] == [768, 384, 96, 96, 64]
    assert [c[0].out_channels for c in model.decoder3d.up_convs] == [504, 224, 192, 96, 64]
    assert model.encoder3d.features.conv0.in_channels == 4
    assert model.hff.conv.in_channels == 64 and model.hff.classifier.out_channels == 3
    # the 2D line0 projection (2112 -> 2208) exists, the matching skips are added as they are
    assert model.decoder2d.skip_projections[0].weight.shape[:2] == (2208, 2112)
    assert isinstance(model.decoder2d.skip_projections[1], torch.nn.Identity)
    # transitions keep the depth: 8 slices -> 2 after the stem, through every block
    feats = model.encoder3d(torch.randn(1, 4, 8, 64, 64))
    assert [tuple(f.shape[2:]) for f in feats] == [(4, 32, 32), (2, 16, 16), (2, 8, 8), (2, 4, 4), (2, 2, 2)]


def test_torchvision_densenet161_loads_into_the_2d_encoder(tmp_path):
    import torchvision
    from mmseg.registry import MODELS
    ref = torchvision.models.densenet161().eval()
    path = str(tmp_path / 'densenet161.pth')
    torch.save(ref.state_dict(), path)
    encoder = MODELS.build(dict(type='DenseNet', arch='161', stem_output=True, out_indices=(0, 1, 2, 3, 4),
                                init_cfg=dict(type='Pretrained', checkpoint=path)))
    encoder.init_weights()
    encoder.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        last = encoder(x)[-1]
        expected = torch.relu(ref.features(x))
    assert torch.allclose(last, expected, atol=1e-5)


@pytest.mark.parametrize('stage', ['2d', '3d', 'hybrid'])
def test_stages(stage):
    model = tiny(stage)
    model.train()
    x = torch.randn(2, 1, 4, 32, 32)
    before = {k: v.clone() for k, v in model.encoder2d.state_dict().items()}
    losses = model.loss(x, samples(2, (4, 32, 32)))
    expected = {'2d': {'2d.loss_ce'}, '3d': {'hff.loss_ce'}, 'hybrid': {'hff.loss_ce', '2d.loss_ce'}}[stage]
    assert set(losses) == expected
    sum(losses.values()).backward()
    grad = lambda m: any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())  # noqa: E731
    assert grad(model.encoder2d) == (stage != '3d')
    assert grad(model.encoder3d) == (stage != '2d')
    assert grad(model.hff) == (stage != '2d')
    if stage == '3d':  # the 2D DenseUNet is fixed, BN statistics included
        assert not model.encoder2d.training
        after = model.encoder2d.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
    model.eval()
    with torch.no_grad():
        logits = model.forward_logits(torch.randn(1, 1, 4, 32, 32))
        out = model.predict(torch.randn(1, 1, 8, 32, 32),
                            [VolumeDataSample(metainfo=dict(img_shape=(8, 32, 32), ori_shape=(8, 32, 32)))])
    assert logits.shape == (1, 3, 4, 32, 32) and out[0].pred_seg.shape == (8, 32, 32)


def test_hybrid_loss_weights_the_2d_term():
    model = tiny('hybrid').eval()  # eval: dropout off, same numbers twice
    x, s = torch.randn(1, 1, 4, 32, 32), samples(1, (4, 32, 32))
    model.lambda_2d = 0.5
    half = model.loss(x, s)['2d.loss_ce']
    model.lambda_2d = 1.0
    assert torch.allclose(model.loss(x, s)['2d.loss_ce'], 2 * half)
    with pytest.raises(ValueError, match='stage must be one of'):
        build(dict(copy.deepcopy(TINY), stage='3D'))


def test_checkpoints_from_before_the_3d_classifier_was_removed_load_strictly(tmp_path):
    # checkpoints written before the 3D decoder's unused classifier was removed hold its two keys:
    # dropped by name (HDenseUNet.obsolete_checkpoint_keys); any other extra key is still refused
    from densedet.engine.checkpoint import load_model_checkpoint
    from densedet.errors import BadCheckpointError
    model = tiny('hybrid')
    old = dict(model.state_dict(), **{'decoder3d.conv_seg.weight': torch.zeros(3, 6, 1, 1, 1),
                                      'decoder3d.conv_seg.bias': torch.zeros(3)})
    path = tmp_path / 'old.pth'
    torch.save({'state_dict': old}, path)
    load_model_checkpoint(tiny('hybrid'), str(path))
    torch.save({'state_dict': dict(old, **{'decoder3d.extra': torch.zeros(1)})}, path)
    with pytest.raises(BadCheckpointError, match=r'1 unexpected \(decoder3d.extra\)'):
        load_model_checkpoint(tiny('hybrid'), str(path))
