"""``--compile`` of tools/train.py and tools/test.py: ``torch.compile`` on the dense parts.

mmengine's own ``cfg.compile`` wraps the whole ``train_step`` (data preprocessor, losses,
backward and the optimizer step), which graph-breaks all over and leaves test runs eager. densedet
compiles, in place (``nn.Module.compile``: parameter names and checkpoints unchanged), the
modules with fixed-shape, data-independent work: the backbone and the neck; heads with RoI
sampling / NMS (mmdet) and the losses stay eager. Every densedet backbone traces as one graph (no
graph breaks, tests/apis/test_compile.py).
"""
from typing import List

import torch.nn as nn

from densedet.engine.wrappers import unwrap_model
from densedet.errors import BadConfigError

COMPILED_PARTS = ('backbone', 'neck', 'encoder2d', 'encoder3d')


def compile_model(model: nn.Module, backend: str = 'inductor', inference: bool = False, **options) -> List[str]:
    """Compiles ``model``'s backbone / neck (H-DenseUNet: both encoders) in place with
    ``torch.compile(backend=backend, **options)``; returns the names of the compiled parts.

    ``inference=True`` (tools/test.py: the process only predicts) turns on inductor's freezing:
    inference graphs take the weights as constants, which lets inductor prepack them for oneDNN and
    fuse each convolution with the pointwise ops after it. Without it, a compiled RDNet-T ran
    slower than eager on CPU (docs/benchmarks.md). A process-wide inductor setting; graphs compiled
    with gradients enabled (training) are not frozen. Weights loaded after the first call are not
    seen by a frozen graph: load the checkpoint first (tools/test.py does).
    """
    model = unwrap_model(model)
    if inference and backend == 'inductor':
        freeze_inference_graphs()
    compiled = []
    for name in COMPILED_PARTS:
        part = getattr(model, name, None)
        if isinstance(part, nn.Module):
            part.compile(backend=backend, **options)
            compiled.append(name)
    if not compiled:
        raise BadConfigError(f'--compile: {type(model).__name__} has none of {COMPILED_PARTS} to compile')
    return compiled


def freeze_inference_graphs() -> None:
    """Inductor's freezing, process-wide: graphs compiled without gradients take the weights as
    constants (prepacked for oneDNN, each conv fused with the pointwise ops after it)."""
    import torch._inductor.config
    torch._inductor.config.freezing = True


def add_compile_arg(parser) -> None:
    parser.add_argument('--compile', nargs='?', const='inductor', default=None, metavar='BACKEND',
                        help='torch.compile the backbone and neck (default backend: inductor)')
