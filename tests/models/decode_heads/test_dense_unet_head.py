"""DenseUNetHead: additive skips with projections, 2D (inside mmseg) and 3D."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from densedet.models.decode_heads import DenseUNetHead


def feats(channels, size, batch=1, dims=2):
    shape = lambda s: (s, ) * dims if isinstance(s, int) else s  # noqa: E731
    return [torch.randn(batch, c, *shape(size // 2**(i + 1))) for i, c in enumerate(channels)]


def test_skip_additions_and_projections():
    head = DenseUNetHead(in_channels=[8, 16, 24, 32, 40], up_channels=(24, 16, 8, 8, 4), num_classes=3).eval()
    # stage 0 adds level 3 (32 ch) to the upsampled level 4 (40 ch): a 1x1 projection 32 -> 40;
    # stage 1 adds level 2 (24 ch) to stage 0's 24 ch output: no projection; stage 4 has no skip
    assert head.skip_levels == [3, 2, 1, 0, None]
    assert head.skip_projections[0].weight.shape[:2] == (40, 32)
    assert all(isinstance(p, torch.nn.Identity) for p in head.skip_projections[1:])
    x = feats([8, 16, 24, 32, 40], 64)
    with torch.no_grad():
        assert head(x).shape == (1, 3, 64, 64)
        assert head._forward_feature(x).shape == (1, 4, 64, 64)
        # the skip is really added: changing level 1 changes the output
        y = [t.clone() for t in x]
        y[1] += 1
        assert not torch.allclose(head(x), head(y))
    plain = DenseUNetHead(in_channels=[8, 16, 24, 32, 40], up_channels=(24, 16, 8, 8, 4), num_classes=3,
                          skip_connections=False).eval()
    assert plain.skip_levels == [None] * 5
    with torch.no_grad():
        y = [t.clone() for t in x]
        y[1] += 1
        assert torch.allclose(plain(x), plain(y))  # without skips only the deepest level matters


def test_3d_anisotropic_scales_and_channel_check():
    head = DenseUNetHead(in_channels=[4, 6, 8], up_channels=(8, 6, 4), scale_factors=[(1, 2, 2), (2, 2, 2), 2],
                         spatial_dims=3, num_classes=2).eval()
    x = [torch.randn(1, 4, 4, 16, 16), torch.randn(1, 6, 4, 8, 8), torch.randn(1, 8, 4, 4, 4)]
    with torch.no_grad():
        out = head(x)
    # stages 0 and 1 follow the skips' sizes, stage 2 (no skip) upsamples by 2 everywhere
    assert out.shape == (1, 2, 8, 32, 32)
    with pytest.raises(ValueError, match=r'inputs have \[4, 6, 9\] channels but in_channels is \[4, 6, 8\]'):
        head([x[0], x[1], torch.randn(1, 9, 4, 4, 4)])
    with pytest.raises(ValueError, match='3 stages but 2 scale_factors'):
        DenseUNetHead(in_channels=[4, 6, 8], up_channels=(8, 6, 4), scale_factors=[2, 2], num_classes=2)


def test_3d_stage_kernel_sizes_keep_the_size():
    head = DenseUNetHead(in_channels=[4, 6, 8], up_channels=(8, 6, 4), scale_factors=2, kernel_sizes=[3, 3, (1, 3, 3)],
                         spatial_dims=3, num_classes=2).eval()
    assert [s[0].kernel_size for s in head.up_convs] == [(3, 3, 3), (3, 3, 3), (1, 3, 3)]
    assert head.up_convs[2][0].padding == (0, 1, 1)
    x = [torch.randn(1, 4, 4, 16, 16), torch.randn(1, 6, 2, 8, 8), torch.randn(1, 8, 1, 4, 4)]
    with torch.no_grad():
        assert head(x).shape == (1, 2, 8, 32, 32)
    with pytest.raises(ValueError, match=r'DenseUNetHead: kernel_size needs 3 odd sizes, got \(1, 2, 2\)'):
        DenseUNetHead(in_channels=[4, 6, 8], up_channels=(8, 6, 4), kernel_sizes=[3, 3, (1, 2, 2)], spatial_dims=3,
                      num_classes=2)
    with pytest.raises(ValueError, match=r'DenseUNetHead: kernel_sizes needs one entry per level \(3\)'):
        DenseUNetHead(in_channels=[4, 6, 8], up_channels=(8, 6, 4), kernel_sizes=[3, 3], num_classes=2)


def test_in_an_mmseg_segmentor_on_densenet():
    init_default_scope('mmseg')
    model = MODELS.build(dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', size=(64, 64)),
        backbone=dict(type='DenseNet', arch=dict(growth_rate=8, block_config=(1, 1, 1, 1), stem_channels=16),
                      stem_output=True, out_indices=(0, 1, 2, 3, 4)),
        decode_head=dict(type='DenseUNetHead', in_channels=[16, 24, 20, 18, 17], up_channels=(16, 16, 8, 8, 8),
                         num_classes=4)))
    from test_configs import seg_samples
    losses = model.loss(torch.randn(2, 3, 64, 64), seg_samples(2, (64, 64), 4))
    losses['decode.loss_ce'].backward()
    assert model.backbone.features.conv0.weight.grad.abs().sum() > 0
    assert model._forward(torch.randn(1, 3, 64, 64)).shape == (1, 4, 64, 64)


def test_deep_supervision_trains_the_finer_stages_and_inference_uses_the_last():
    """nnU-Net-style deep supervision: classifiers on the stages before the last, halving weights;
    in a volume segmentor the losses see every output, inference only the last stage."""
    head = DenseUNetHead(in_channels=[4, 6, 8], up_channels=(8, 6, 4), scale_factors=[(1, 2, 2), (2, 2, 2), 2],
                         spatial_dims=3, num_classes=2, deep_supervision=2)
    assert head.loss_weights == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    x = [torch.randn(1, 4, 4, 16, 16), torch.randn(1, 6, 4, 8, 8), torch.randn(1, 8, 4, 4, 4)]
    outs = head.forward_heads(x)
    assert [tuple(o.shape[2:]) for o in outs] == [(8, 32, 32), (4, 16, 16), (4, 8, 8)]
    head.eval()
    with torch.no_grad():
        assert torch.equal(head(x), head.forward_heads(x)[0])
    init_default_scope('mmseg')
    from densedet.registry import MODELS as DENSEDET_MODELS
    from densedet.structures import VolumeDataSample
    segmentor = DENSEDET_MODELS.build(dict(
        type='VolumeEncoderDecoder', data_preprocessor=dict(type='VolumeDataPreProcessor', size_divisor=8),
        backbone=dict(type='UNetEncoder', in_channels=1, channels=(4, 6, 8), spatial_dims=3),
        decode_head=dict(type='DenseUNetHead', in_channels=[4, 6, 8], up_channels=(6, 4), spatial_dims=3,
                         num_classes=2, deep_supervision=1, loss_weights=[0.75, 0.25])))
    sample = VolumeDataSample()
    sample.gt_seg = torch.randint(0, 2, (8, 8, 8))
    losses = segmentor.loss(torch.randn(1, 1, 8, 8, 8), [sample])
    assert sorted(losses) == ['head1.loss_ce', 'head2.loss_ce']
    losses['head2.loss_ce'].backward()
    assert segmentor.decode_head.aux_classifiers[0].weight.grad.abs().sum() > 0
    assert segmentor.decode_head.conv_seg.weight.grad is None
    with pytest.raises(ValueError, match=r'deep_supervision must be in 0\.\.2'):
        DenseUNetHead(in_channels=[4, 6, 8], up_channels=(8, 6, 4), num_classes=2, deep_supervision=3)
    with pytest.raises(ValueError, match='loss_weights needs 2 entries'):
        DenseUNetHead(in_channels=[4, 6, 8], up_channels=(8, 6, 4), num_classes=2, deep_supervision=1,
                      loss_weights=[1.0])
