"""DenseFPN: FPN's interface and output geometry, dense fusion, gradients, mmseg/mmdet use."""
import pytest
import torch
from mmdet.models.necks import FPN

from densedet.models.necks import DenseFPN, LevelFusion

IN_CHANNELS = [16, 24, 32, 48]
SIZES = [(32, 40), (16, 20), (8, 10), (4, 5)]  # strides 4/8/16/32 of a 128x160 image


def _inputs(requires_grad=False):
    torch.manual_seed(0)
    return [torch.randn(2, c, *s, requires_grad=requires_grad) for c, s in zip(IN_CHANNELS, SIZES)]


FPN_ARGS = [
    dict(num_outs=4),
    dict(num_outs=5),  # Mask R-CNN: P6 by max-pooling
    dict(num_outs=5, start_level=1, add_extra_convs='on_input'),  # RetinaNet
    dict(num_outs=5, start_level=1, add_extra_convs='on_lateral', relu_before_extra_convs=True),
    dict(num_outs=6, add_extra_convs='on_output', relu_before_extra_convs=True),
    dict(num_outs=3, start_level=0, end_level=2),
    dict(num_outs=5, add_extra_convs=True, norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU')),
]


@pytest.mark.parametrize('fusion', ['concat', 'weighted_sum'])
@pytest.mark.parametrize('kwargs', FPN_ARGS, ids=[str(sorted(a.items())) for a in FPN_ARGS])
def test_output_shapes_equal_fpn(kwargs, fusion):
    x = _inputs()
    ref = FPN(IN_CHANNELS, 8, **kwargs).eval()(x)
    out = DenseFPN(IN_CHANNELS, 8, fusion=fusion, **kwargs).eval()(x)
    assert [o.shape for o in out] == [r.shape for r in ref]


@pytest.mark.parametrize('bottom_up', [False, True])
@pytest.mark.parametrize('fusion', ['concat', 'weighted_sum'])
def test_gradients_reach_every_input_level(fusion, bottom_up):
    x = _inputs(requires_grad=True)
    neck = DenseFPN(IN_CHANNELS, 8, num_outs=5, fusion=fusion, bottom_up=bottom_up, num_repeats=2)
    neck.init_weights()
    outs = neck(x)
    # The finest output alone: with dense top-down fusion every coarser input must reach it.
    torch.autograd.backward(outs[0].sum(), inputs=x, retain_graph=True)
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in x)
    sum(o.sum() for o in outs).backward()
    missing = [n for n, p in neck.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_top_down_is_dense():
    """Each node's fusion sees the lateral plus all coarser nodes (concat: (k+1)*C input channels)."""
    neck = DenseFPN(IN_CHANNELS, 8, num_outs=4, fusion='concat', bottom_up=True)
    in_ch = [node.fuse.reduce.conv.in_channels if node.fuse.reduce else 8 for node in neck.top_down[0]]
    assert in_ch == [32, 24, 16, 8]
    in_ch = [node.fuse.reduce.conv.in_channels for node in neck.bottom_up_nodes[0]]
    assert in_ch == [16, 24, 32]  # levels 1..3 read 2..4 maps; level 0 passes through
    ws = [None if n.fuse.weights is None else n.fuse.weights.numel()
          for n in DenseFPN(IN_CHANNELS, 8, num_outs=4, fusion='weighted_sum').top_down[0]]
    assert ws == [4, 3, 2, None]


def test_coarsest_input_changes_finest_output():
    """A change in the stride-32 input alone moves the stride-4 output (the dense skip), in both modes."""
    for fusion in ('concat', 'weighted_sum'):
        neck = DenseFPN(IN_CHANNELS, 8, num_outs=4, fusion=fusion).eval()
        x = _inputs()
        base = neck(x)[0]
        x[3] = x[3] + 1.0
        assert not torch.allclose(neck(x)[0], base)


def test_weighted_sum_is_normalised_convex_combination():
    fuse = LevelFusion(3, 4, 'weighted_sum', eps=0.0)
    with torch.no_grad():
        fuse.weights.copy_(torch.tensor([1.0, 3.0, -2.0]))  # negative weight is clipped to 0 by ReLU
    a, b, c = torch.ones(1, 4, 2, 2), torch.full((1, 4, 2, 2), 5.0), torch.full((1, 4, 2, 2), 100.0)
    torch.testing.assert_close(fuse(a, [b, c], lambda x, like: x), torch.full((1, 4, 2, 2), 0.25 * 1 + 0.75 * 5))


@pytest.mark.parametrize('mode', ['nearest', 'bilinear'])
def test_project_then_upsample_equals_concat_then_project(mode):
    """The cheap top-down concat path gives the output of concatenating at full resolution."""
    torch.manual_seed(0)
    fuse = LevelFusion(3, 8, 'concat', norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU')).eval()
    with torch.no_grad():
        fuse.reduce.bn.running_mean.uniform_(-1, 1)
        fuse.reduce.bn.running_var.uniform_(0.5, 2)
        fuse.reduce.conv.bias = torch.nn.Parameter(torch.randn(8))
    own, coarser = torch.randn(2, 8, 16, 20), [torch.randn(2, 8, 8, 10), torch.randn(2, 8, 4, 5)]

    def up(x, like):
        kw = {} if mode == 'nearest' else dict(align_corners=False)
        return torch.nn.functional.interpolate(x, size=like.shape[2:], mode=mode, **kw)

    literal = fuse.reduce(torch.cat([own] + [up(c, own) for c in coarser], dim=1))
    torch.testing.assert_close(fuse(own, coarser, up, linear_resize=True), literal, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fuse(own, coarser, up, linear_resize=False), literal)


def test_bad_arguments():
    with pytest.raises(ValueError, match='fusion'):
        DenseFPN(IN_CHANNELS, 8, num_outs=4, fusion='add')
    with pytest.raises(ValueError, match='num_outs'):
        DenseFPN(IN_CHANNELS, 8, num_outs=3)
    with pytest.raises(ValueError, match='add_extra_convs'):
        DenseFPN(IN_CHANNELS, 8, num_outs=5, add_extra_convs='on_top')
    with pytest.raises(ValueError, match='expected 4 input levels'):
        DenseFPN(IN_CHANNELS, 8, num_outs=4)(_inputs()[:3])


def test_cost_near_fpn():
    """Concat fusion adds 1x1 reductions only; weighted sum adds a handful of scalars."""
    def count(m):
        return sum(p.numel() for p in m.parameters())
    args = ([256, 512, 1024, 2048], 256)
    fpn = count(FPN(*args, num_outs=5))
    assert count(DenseFPN(*args, num_outs=5, fusion='weighted_sum')) - fpn == 4 + 3 + 2
    concat = count(DenseFPN(*args, num_outs=5, fusion='concat'))
    assert concat - fpn == (4 + 3 + 2) * 256 * 256 + 3 * 256  # 1x1 convs with bias
    assert concat / fpn < 1.25  # FLOPs: tests/tools/test_analysis.py


def test_inside_mmseg_segmentor():
    from mmengine.registry import MODELS, init_default_scope
    from test_configs import seg_samples
    init_default_scope('mmseg')
    model = MODELS.build(dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', size=(64, 64)),
        backbone=dict(type='DenseNet', arch='121', out_indices=(0, 1, 2, 3)),
        neck=dict(type='DenseFPN', in_channels=[256, 512, 1024, 1024], out_channels=32, num_outs=4,
                  fusion='weighted_sum', bottom_up=True),
        decode_head=dict(type='FPNHead', in_channels=[32] * 4, in_index=[0, 1, 2, 3], feature_strides=[4, 8, 16, 32],
                         channels=16, num_classes=5, norm_cfg=dict(type='BN'))))
    model.train()
    losses = model.loss(torch.randn(2, 3, 64, 64), seg_samples(2, (64, 64), 5))
    sum(losses.values()).backward()
    assert model.neck.lateral_convs[3].conv.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert model._forward(torch.randn(1, 3, 64, 64)).shape == (1, 5, 16, 16)
