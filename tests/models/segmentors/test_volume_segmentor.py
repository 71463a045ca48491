"""VolumeEncoderDecoder, the volume preprocessor and the soft Dice loss."""
import pytest
import torch
from volume_helpers import build, samples

from densedet.models.losses import SoftDiceLoss
from densedet.structures import VolumeDataSample


def test_loss_backward_and_predict_geometry():
    model = build()
    losses = model.loss(torch.randn(2, 1, 8, 32, 32), samples(2, (8, 32, 32)))
    assert set(losses) == {'loss_ce', 'loss_dice'}
    sum(losses.values()).backward()
    assert model.backbone.features.conv0.weight.grad.abs().sum() > 0
    model.eval()
    # a padded (12 -> 16 slices) and resampled (ori 20 x 40 x 30) case comes back on its original grid
    sample = VolumeDataSample(metainfo=dict(img_shape=(12, 32, 32), ori_shape=(20, 40, 30)))
    with torch.no_grad():
        out = model.predict(torch.randn(1, 1, 16, 48, 48), [sample])[0]
    assert out.pred_seg.shape == (20, 40, 30) and out.pred_seg.max() < 3


def test_flip_tta_is_the_mean_of_the_flipped_passes():
    model = build().eval()
    x = torch.randn(1, 1, 8, 32, 32)
    flips = [[3], [2, 4]]
    tta = build(flip_axes=flips, roi_size=(8, 32, 32)).eval()
    with torch.no_grad():
        plain = model.forward_logits(x)
        manual = (plain + sum(torch.flip(model.forward_logits(torch.flip(x, f)), f) for f in flips)) / 3
        assert torch.allclose(tta.inference(x), manual, atol=1e-5)
        assert not torch.allclose(plain, manual, atol=1e-4)


def test_unetpp_3d_deep_supervision_losses():
    cfg = dict(type='VolumeEncoderDecoder',
               backbone=dict(type='UNetEncoder', in_channels=1, channels=(4, 8, 16), spatial_dims=3),
               decode_head=dict(type='UNetPlusPlusHead', in_channels=(4, 8, 16), num_classes=2, spatial_dims=3,
                                loss_weights=[0.5, 1.0]),
               losses=[dict(type='CrossEntropyLoss')])
    model = build(cfg)
    losses = model.loss(torch.randn(1, 1, 8, 16, 16), samples(1, (8, 16, 16), classes=2))
    assert set(losses) == {'head1.loss_ce', 'head2.loss_ce'}
    outs = model.forward_train_logits(torch.randn(1, 1, 8, 16, 16))
    assert len(outs) == 2 and outs[0].shape == (1, 2, 8, 16, 16)


def test_preprocessor_pads_to_divisor_and_ignores_padding():
    from densedet.models import VolumeDataPreProcessor
    pre = VolumeDataPreProcessor(size_divisor=(4, 16, 16))
    batch = samples(1, (5, 20, 18)) + samples(1, (7, 16, 16))
    out = pre(dict(inputs=[torch.ones(1, 5, 20, 18), torch.ones(1, 7, 16, 16)], data_samples=batch), training=True)
    assert out['inputs'].shape == (2, 1, 8, 32, 32)
    assert out['inputs'][0, 0, 5:].eq(0).all() and out['inputs'][0, 0, :5, :20, :18].eq(1).all()
    assert out['data_samples'][0].gt_seg.shape == (8, 32, 32)
    assert out['data_samples'][0].gt_seg[5:].eq(255).all()
    assert out['data_samples'][1].batch_input_shape == (8, 32, 32)
    with pytest.raises(ValueError, match=r'\(C, D, H, W\)'):
        pre(dict(inputs=[torch.ones(1, 5, 5)], data_samples=None))


def test_soft_dice_loss_values():
    target = torch.tensor([[[0, 1], [2, 2]]])  # N=1, 2x2
    perfect = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 100
    loss = SoftDiceLoss()
    assert loss(perfect, target).item() == pytest.approx(0.0, abs=1e-5)
    # uniform probabilities: Dice_c = 2 * (n_c / 3) / (4 / 3 + n_c), classes 1 (n=1) and 2 (n=2)
    expected = 1 - (2 * (1 / 3) / (4 / 3 + 1) + 2 * (2 / 3) / (4 / 3 + 2)) / 2
    assert loss(torch.zeros(1, 3, 2, 2), target).item() == pytest.approx(expected, rel=1e-4)
    # ignored voxels count nowhere: the perfect prediction stays perfect when a wrong voxel is ignored
    wrong = perfect.clone()
    wrong[0, :, 0, 0] = torch.tensor([0.0, 0.0, 100.0])
    ignored = target.clone()
    ignored[0, 0, 0] = 255
    assert loss(wrong, ignored).item() == pytest.approx(0.0, abs=1e-5)
    assert loss(wrong, target).item() == pytest.approx(1 - (1 + 0.8) / 2, abs=1e-4)  # tumour: 2*2 / (3 + 2)


def test_voxel_weighted_cross_entropy():
    from densedet.models.losses import VoxelWeightedCrossEntropyLoss
    logits = torch.randn(2, 3, 4, 5, 6)
    target = torch.randint(0, 3, (2, 4, 5, 6))
    target[0, 0] = 255
    weights = torch.tensor([0.78, 0.65, 8.57])
    nll = -logits.log_softmax(1).gather(1, target.clamp(max=2).unsqueeze(1))[:, 0]
    valid = target != 255
    expected = (weights[target.clamp(max=2)] * nll)[valid].mean()  # the official Keras formula
    loss = VoxelWeightedCrossEntropyLoss(class_weight=weights.tolist())
    assert torch.allclose(loss(logits, target), expected, atol=1e-6)
    assert loss.loss_name == 'loss_ce'


def test_predict_applies_the_largest_component_setting():
    from densedet.evaluation import keep_largest_component
    x = torch.randn(1, 1, 8, 32, 32)
    meta = dict(img_shape=(8, 32, 32), ori_shape=(8, 32, 32))
    with torch.no_grad():
        plain = build().eval().predict(x, [VolumeDataSample(metainfo=meta)])[0].pred_seg
        kept = build(largest_component=[1, 2]).eval().predict(x, [VolumeDataSample(metainfo=meta)])[0].pred_seg
    assert torch.equal(kept, keep_largest_component(plain, [1, 2]))
    assert not torch.equal(kept, plain)  # random weights: fragmented classes, so something was removed
