"""The segmentors' sliding-window inference (MONAI's stitching): exactness and blending weights."""
import itertools
import math

import pytest
import torch
import torch.nn as nn
from mmengine.registry import init_default_scope

from densedet.models.segmentors import BaseVolumeSegmentor


class NetSegmentor(BaseVolumeSegmentor):
    """A volume segmentor around any callable, to look at the inference path alone."""

    def __init__(self, net, **test_cfg):
        init_default_scope('mmseg')
        super().__init__(test_cfg=test_cfg)
        self.net = net

    def forward_logits(self, inputs):
        return self.net(inputs)


def conv_net(in_channels=1, classes=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(in_channels, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, classes, 3, padding=1)).eval()


def window_starts(size, roi, overlap):
    """The documented positions: ``int(roi * (1 - overlap))`` apart, the last flush with the border."""
    if roi >= size:
        return [0]
    step = max(int(roi * (1 - overlap)), 1)
    count = next(n for n in itertools.count(1) if (n - 1) * step + roi >= size)
    return [min(i * step, size - roi) for i in range(count)]


def gaussian(roi, sigma_scale=0.125):
    """The documented weight: a separable Gaussian, sigma = 0.125 x window, floored at its minimum
    or 1e-3 (whichever is larger)."""
    axes = [torch.exp(-(torch.arange(n) - (n - 1) / 2)**2 / (2 * (sigma_scale * n)**2)) for n in roi]
    weight = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    return weight.clamp(min=max(weight.min().item(), 1e-3))


def test_window_covering_the_volume_equals_one_forward():
    net = conv_net()
    x = torch.randn(2, 1, 12, 20, 16)
    with torch.no_grad():
        full = net(x)
        assert torch.allclose(NetSegmentor(net, roi_size=(12, 20, 16)).inference(x), full, atol=1e-6)
        assert torch.allclose(NetSegmentor(net).inference(x), full, atol=1e-6)  # default window: the volume
        # a larger window pads with zeros on both sides and crops back: equal away from the borders
        out = NetSegmentor(net, roi_size=(16, 24, 16)).inference(x)
        assert out.shape == full.shape
        assert torch.allclose(out[..., 1:-1, 1:-1, 1:-1], full[..., 1:-1, 1:-1, 1:-1], atol=1e-6)


def test_pointwise_network_is_exact_with_overlapping_windows():
    net = nn.Conv3d(2, 3, 1).eval()
    x = torch.randn(1, 2, 19, 23, 17)
    with torch.no_grad():
        out = NetSegmentor(net, roi_size=(8, 10, 6), overlap=0.6, sw_batch_size=5).inference(x)
    assert torch.allclose(out, net(x), atol=1e-5)


@pytest.mark.parametrize('blend', ['gaussian', 'constant'])
def test_blending_weights_are_the_documented_ones(blend):
    """A predictor returning each window's index shows the weights: every voxel gets the weighted
    mean of the indices of the windows covering it, with the documented positions and weights."""
    x = torch.zeros(1, 1, 14, 18, 11)
    roi, overlap = (6, 8, 5), 0.5
    calls = itertools.count()

    def window_ids(windows):
        return torch.stack([torch.full((1, ) + tuple(windows.shape[2:]), float(next(calls))) for _ in windows])

    with torch.no_grad():
        out = NetSegmentor(window_ids, roi_size=roi, overlap=overlap, sw_batch_size=3, blend=blend).inference(x)
    weight = gaussian(roi) if blend == 'gaussian' else torch.ones(roi)
    starts = list(itertools.product(*(window_starts(s, r, overlap) for s, r in zip(x.shape[2:], roi))))
    numerator, denominator = torch.zeros(x.shape[2:]), torch.zeros(x.shape[2:])
    for index, start in enumerate(starts):
        box = tuple(slice(s, s + r) for s, r in zip(start, roi))
        numerator[box] += weight * index
        denominator[box] += weight
    assert next(calls) == len(starts)  # every window predicted once
    assert torch.allclose(out[0, 0], numerator / denominator, atol=1e-4)
    with torch.no_grad():
        ones = NetSegmentor(lambda w: torch.ones(w.shape[0], 2, *w.shape[2:]), roi_size=roi,
                            blend=blend).inference(x)
    assert torch.allclose(ones, torch.ones_like(ones), atol=1e-6)


def test_documented_weight_shape():
    weight = gaussian((9, 9, 9))
    assert weight[4, 4, 4] == pytest.approx(1.0)
    assert weight[0, 4, 4] == pytest.approx(math.exp(-16 / (2 * 1.125**2)), rel=1e-5)
    assert window_starts(21, 8, 0.5) == [0, 4, 8, 12, 13]


def test_bad_blend():
    with pytest.raises(ValueError, match="blend must be 'gaussian' or 'constant'"):
        NetSegmentor(nn.Identity(), blend='median').inference(torch.zeros(1, 1, 4, 4, 4))


# --- bounded-memory prediction (slab-wise blending + argmax) ------------------------------------
def predict_both(net, x, metainfo, **test_cfg):
    """``predict`` through the bounded path and through MONAI's whole-volume logits."""
    from densedet.structures import VolumeDataSample
    out = {}
    for bounded in (True, False):
        seg = NetSegmentor(net, keep_logits=True, bounded_memory=bounded, **test_cfg)
        with torch.no_grad():
            out[bounded] = seg.predict(x, [VolumeDataSample(metainfo=dict(metainfo))])[0]
    return out[True], out[False]


@pytest.mark.parametrize('size, roi, overlap, metainfo', [
    ((23, 37, 41), (8, 16, 16), 0.5, dict()),  # no resize
    ((23, 37, 41), (8, 16, 16), 0.5, dict(img_shape=(21, 30, 41), ori_shape=(40, 25, 70))),  # crop + resize
    ((5, 9, 40), (8, 16, 16), 0.25, dict(img_shape=(5, 9, 40), ori_shape=(3, 18, 20))),  # smaller than window
])
def test_bounded_prediction_equals_whole_volume_prediction(size, roi, overlap, metainfo):
    metainfo.setdefault('img_shape', size)
    x = torch.randn(1, 2, *size)
    bounded, full = predict_both(conv_net(2, 5), x, metainfo, roi_size=roi, overlap=overlap, sw_batch_size=3)
    assert bounded.pred_seg.shape == full.pred_seg.shape == metainfo.get('ori_shape', metainfo['img_shape'])
    assert torch.equal(bounded.pred_seg, full.pred_seg)
    assert torch.allclose(bounded.seg_logits.softmax(0), full.seg_logits.softmax(0), atol=1e-3)


def test_bounded_prediction_paints_regions_like_the_whole_volume():
    regions = [dict(name='whole', labels=[1, 2], order=1), dict(name='core', labels=[2], order=2)]
    x = torch.randn(1, 1, 12, 20, 18)
    bounded, full = predict_both(conv_net(1, 2), x, dict(img_shape=(12, 20, 18), ori_shape=(15, 20, 30),
                                                         regions=regions), roi_size=(6, 8, 8))
    assert torch.equal(bounded.pred_seg, full.pred_seg)
    assert set(bounded.pred_seg.unique().tolist()) <= {0, 1, 2}


def test_probabilities_that_do_not_fit_are_refused_with_their_size(monkeypatch):
    from densedet.errors import BadInputError
    from densedet.models.segmentors import sliding_window
    monkeypatch.setattr(sliding_window, 'available_memory', lambda device: 2**20)
    with pytest.raises(BadInputError, match=r'probabilities of 117 classes at \(300, 512, 512\) needs 34\.3 GiB'):
        sliding_window.allocate_logits(117, (300, 512, 512), torch.device('cpu'))


PEAK_SCRIPT = r'''
import os, sys, threading, time, torch
sys.path.insert(0, sys.argv[1])
from test_sliding_window import NetSegmentor
from densedet.structures import VolumeDataSample
torch.set_num_threads(1)
net = torch.nn.Conv3d(1, 40, 1).eval()  # 40 classes
x = torch.randn(1, 1, 96, 192, 192)
case = dict(img_shape=(96, 192, 192), ori_shape=(120, 192, 192))
page = os.sysconf('SC_PAGE_SIZE')


def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * page


def peak_rise(run):
    # the resident memory sampled every 2 ms while ``run`` runs, over what was resident before: the
    # process-wide ru_maxrss would also hold whatever peak the imports reached
    before, samples, done = rss(), [], threading.Event()

    def sample():
        while not done.is_set():
            samples.append(rss())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    run()
    done.set()
    sampler.join()
    return max(samples + [rss()]) - before


with torch.no_grad():
    for bounded in (True, False):
        seg = NetSegmentor(net, roi_size=(8, 64, 64), overlap=0.5, sw_batch_size=4, bounded_memory=bounded)
        seg.predict(x[:, :, :8, :64, :64], [VolumeDataSample(metainfo=dict(img_shape=(8, 64, 64),
                                                                           ori_shape=(9, 60, 60)))])  # warm-up
        rise = peak_rise(lambda: seg.predict(x, [VolumeDataSample(metainfo=case)]))
        print('bounded' if bounded else 'full', rise)
'''


def test_bounded_prediction_peak_memory_does_not_hold_the_whole_logits(tmp_path):
    """A 40-class case resized to 120 x 192 x 192: the whole-volume path holds its float32 logits
    (708 MB, + the resize's input); the bounded path a window-deep ring (8 x 192 x 192 x 40), the
    labels and transient slabs. Resident memory sampled during each prediction (ru_maxrss once
    failed this on a machine where the imports had peaked higher)."""
    import os.path as osp
    import subprocess
    import sys
    script = tmp_path / 'peak.py'
    script.write_text(PEAK_SCRIPT)
    out = subprocess.run([sys.executable, str(script), osp.dirname(__file__)], capture_output=True, text=True,
                         check=True).stdout
    peaks = {mode: int(value) for mode, value in (line.split() for line in out.splitlines()[-2:])}
    whole_logits = 40 * 120 * 192 * 192 * 4
    assert peaks['full'] > whole_logits, peaks
    assert peaks['bounded'] < 0.5 * whole_logits, peaks


@pytest.mark.parametrize('bounded', [True, False])
def test_windows_never_see_the_preprocessors_padding(bounded):
    """The data preprocessor pads a case to the network's stride; with windows that padding is
    cropped first (its zeros look like tissue after normalisation, and mirroring TTA moved them to
    the start of a window): NaN there must not reach any logit."""
    from densedet.structures import VolumeDataSample
    x = torch.randn(1, 1, 16, 40, 40)
    x[:, :, 13:] = float('nan')
    x[:, :, :, 35:] = float('nan')
    seg = NetSegmentor(conv_net(), roi_size=(8, 16, 16), keep_logits=True, bounded_memory=bounded,
                       flip_axes=[[3], [4]])
    with torch.no_grad():
        out = seg.predict(x, [VolumeDataSample(metainfo=dict(img_shape=(13, 35, 40)))])[0]
    assert out.seg_logits.shape == (3, 13, 35, 40) and torch.isfinite(out.seg_logits).all()
