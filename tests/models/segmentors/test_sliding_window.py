"""Gaussian sliding-window inference: exactness, blending weights, parity with MONAI."""
import itertools

import pytest
import torch
import torch.nn as nn

from densedet.models.segmentors import importance_map, sliding_window_inference, window_starts


def conv_net(in_channels=1, classes=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(in_channels, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, classes, 3, padding=1)).eval()


def test_window_starts():
    assert window_starts(10, 16, 0.5) == [0]
    assert window_starts(16, 16, 0.5) == [0]
    assert window_starts(20, 8, 0.5) == [0, 4, 8, 12]
    assert window_starts(21, 8, 0.5) == [0, 4, 8, 12, 13]  # the last window ends at the border
    assert window_starts(33, 16, 0.25) == [0, 12, 17]
    assert window_starts(9, 8, 0.99) == [0, 1]  # the step never drops to 0


def test_window_covering_the_volume_equals_one_forward():
    net = conv_net()
    x = torch.randn(2, 1, 12, 20, 16)
    with torch.no_grad():
        full = net(x)
        assert torch.allclose(sliding_window_inference(x, (12, 20, 16), net), full, atol=1e-6)
        # a larger window pads symmetrically and crops back: still one forward for a same-padding conv
        # on the zero-padded volume, i.e. equal away from the padded borders
        out = sliding_window_inference(x, (16, 24, 16), net)
        assert out.shape == full.shape
        assert torch.allclose(out[..., 1:-1, 1:-1, 1:-1], full[..., 1:-1, 1:-1, 1:-1], atol=1e-6)


def test_pointwise_network_is_exact_with_overlapping_windows():
    net = nn.Conv3d(2, 3, 1).eval()
    x = torch.randn(1, 2, 19, 23, 17)
    with torch.no_grad():
        out = sliding_window_inference(x, (8, 10, 6), net, overlap=0.6, sw_batch_size=5)
        assert torch.allclose(out, net(x), atol=1e-5)


@pytest.mark.parametrize('blend', ['gaussian', 'constant'])
def test_blending_weights_sum_to_one(blend):
    """A predictor returning each window's own position shows the weights: the output is the
    weighted mean of the windows covering a voxel, and a constant predictor gives the constant."""
    x = torch.zeros(1, 1, 14, 18, 11)
    roi, overlap = (6, 8, 5), 0.5
    with torch.no_grad():
        ones = sliding_window_inference(x, roi, lambda w: torch.ones(w.shape[0], 2, *w.shape[2:]), overlap,
                                        blend=blend)
    assert torch.allclose(ones, torch.ones_like(ones), atol=1e-6)
    # hand-made weighted average at every voxel: sum_w weight_w(v) * id_w / sum_w weight_w(v)
    weight = importance_map(roi, blend)
    starts = list(itertools.product(*(window_starts(s, r, overlap) for s, r in zip(x.shape[2:], roi))))
    numerator, denominator = torch.zeros(x.shape[2:]), torch.zeros(x.shape[2:])
    for index, start in enumerate(starts):
        box = tuple(slice(s, s + r) for s, r in zip(start, roi))
        numerator[box] += weight * index
        denominator[box] += weight
    ids = iter(range(len(starts)))

    def window_id(w):
        return torch.stack([torch.full((1, ) + tuple(w.shape[2:]), float(next(ids))) for _ in range(w.shape[0])])

    with torch.no_grad():
        out = sliding_window_inference(x, roi, window_id, overlap, sw_batch_size=3, blend=blend)
    assert torch.allclose(out[0, 0], numerator / denominator, atol=1e-5)


def test_gaussian_importance_map():
    weight = importance_map((9, 9, 9), 'gaussian', 0.125)
    assert weight[4, 4, 4] == pytest.approx(1.0)
    assert weight.min() >= 1e-3 - 1e-9  # far corners floored, never zero
    assert torch.allclose(weight, weight.flip(0)) and torch.allclose(weight, weight.permute(2, 1, 0))


@pytest.mark.parametrize('shape,roi,overlap', [((1, 1, 20, 33, 40), (8, 16, 16), 0.5),
                                               ((2, 1, 10, 11, 10), (16, 16, 16), 0.25),
                                               ((1, 1, 17, 30, 30), (8, 12, 10), 0.3)])
def test_same_output_as_monai(shape, roi, overlap):
    from monai.inferers import sliding_window_inference as monai_swi
    net = conv_net()
    x = torch.randn(shape)
    with torch.no_grad():
        ours = sliding_window_inference(x, roi, net, overlap=overlap, sw_batch_size=3)
        theirs = monai_swi(x, roi, 3, net, overlap=overlap, mode='gaussian')
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_low_resolution_predictor_is_resized():
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        out = sliding_window_inference(x, (8, 8, 8), lambda w: torch.ones(w.shape[0], 2, 2, 2, 2), 0.5)
    assert out.shape == (1, 2, 16, 16, 16) and torch.allclose(out, torch.ones_like(out), atol=1e-6)
    with pytest.raises(ValueError, match='overlap'):
        sliding_window_inference(x, (8, 8, 8), lambda w: w, overlap=1.0)
    with pytest.raises(ValueError, match='spatial dims'):
        sliding_window_inference(x, (8, 8), lambda w: w)
