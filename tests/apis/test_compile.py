"""``--compile``: every densedet backbone traces as one graph (no graph breaks), and
``compile_model`` compiles a segmentor's backbone / neck in place without renaming parameters."""
import os

import pytest
import torch
import torch._dynamo

from densedet.apis import init_model
from densedet.apis.compile import compile_model
from densedet.models.backbones import DLA, DPN, DenseNet, HarDNet, RDNet, VoVNet

BACKBONES = {
    'rdnet': lambda: RDNet(arch='tiny', drop_path_rate=0.1),
    'densenet': lambda: DenseNet(arch=dict(growth_rate=8, block_config=(2, 3, 2, 2), stem_channels=16)),
    'vovnet': lambda: VoVNet(arch='19'),
    'dla': lambda: DLA(arch='34'),
    'dpn': lambda: DPN(arch='68'),
    'hardnet': lambda: HarDNet(arch='39', depthwise=True),
}


@pytest.mark.parametrize('family', BACKBONES)
def test_backbone_traces_without_graph_breaks(family):
    """``fullgraph=True`` raises at the first graph break; the 'eager' backend traces with dynamo
    but runs the captured graph in PyTorch (no code generation: seconds, same numbers)."""
    torch._dynamo.reset()
    backbone = BACKBONES[family]().eval()
    x = torch.randn(1, 3, 64, 64)
    compiled = torch.compile(backbone, backend='eager', fullgraph=True)
    for a, b in zip(compiled(x), backbone(x)):
        torch.testing.assert_close(a, b)
    if family == 'rdnet':  # drop path and LayerNorm in training mode, with gradients
        backbone.train()
        sum(o.sum() for o in compiled(x)).backward()
        assert backbone.stem[0].weight.grad is not None


def test_compile_model_in_place_keeps_parameter_names(repo_root):
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = init_model(os.path.join(repo_root, 'configs/demo/upernet_rdnet_ade20k_demo.py'))
    names = list(model.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model.decode_head(model.neck(model.backbone(x)) if model.with_neck else model.backbone(x))
    assert compile_model(model, backend='eager') == ['backbone']
    assert list(model.state_dict()) == names
    with torch.no_grad():
        out = model.decode_head(model.backbone(x))
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match='none of'):
        compile_model(torch.nn.Linear(2, 2))
    # tools/test.py --tta --compile: the segmentor inside the test-time-augmentation model
    from mmseg.models import SegTTAModel
    tta_model = init_model(os.path.join(repo_root, 'configs/demo/upernet_rdnet_ade20k_demo.py'))
    assert compile_model(SegTTAModel(module=tta_model), backend='eager') == ['backbone']
    assert tta_model.backbone._compiled_call_impl is not None  # nn.Module.compile() sets it


@pytest.mark.parametrize('backend, inference, frozen', [('inductor', True, True), ('inductor', False, False),
                                                        ('eager', True, False)])
def test_inference_compile_freezes_inductor_graphs(backend, inference, frozen):
    """tools/test.py compiles with ``inference=True``: without inductor's freezing a compiled RDNet
    ran slower than eager on CPU (docs/benchmarks.md). Compilation itself is lazy (first call)."""
    import torch._inductor.config
    model = torch.nn.Module()
    model.backbone = RDNet(arch='tiny')
    with torch._inductor.config.patch(freezing=False):  # restored afterwards
        compile_model(model, backend=backend, inference=inference)
        assert torch._inductor.config.freezing is frozen
