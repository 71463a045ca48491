"""The official networks' state-dict layouts (key -> shape), written out from their published definitions
independently of densedet's modules, so tests can check that official checkpoints load key for key."""
from typing import Dict, Tuple

import torch

Shapes = Dict[str, Tuple[int, ...]]


def harmonic_link(layer: int, base: int, growth: float, mult: float = 1.7) -> Tuple[int, int]:
    """(out, in) channels of harmonic layer ``layer`` (1-based; 0 is the block input of ``base``
    channels): it reads layers ``layer - 2**i`` for every ``2**i`` dividing it and is ``mult`` times
    wider per extra link, rounded to an even width (the official ``get_link``)."""
    if layer == 0:
        return base, 0
    out, links = growth, []
    for i in range(10):
        if layer % 2**i == 0:
            links.append(layer - 2**i)
            if i > 0:
                out *= mult
    return int(int(out + 1) / 2) * 2, sum(harmonic_link(k, base, growth, mult)[0] for k in links)


def conv_bn(shapes: Shapes, prefix: str, cin: int, cout: int, k: int, conv: str = 'conv', norm: str = 'norm'):
    """A bias-free ``k x k`` conv followed by a BatchNorm, under ``prefix``."""
    shapes[f'{prefix}.{conv}.weight'] = (cout, cin, k, k)
    for name in ('weight', 'bias', 'running_mean', 'running_var'):
        shapes[f'{prefix}.{norm}.{name}'] = (cout, )
    shapes[f'{prefix}.{norm}.num_batches_tracked'] = ()


def harmonic_block(shapes: Shapes, prefix: str, cin: int, growth: float, n: int, mult: float = 1.7) -> int:
    """The layers of a harmonic block (3x3 conv-BN each); returns its output width (odd layers + last)."""
    out = 0
    for i in range(n):
        cout, layer_in = harmonic_link(i + 1, cin, growth, mult)
        conv_bn(shapes, f'{prefix}.layers.{i}', layer_in, cout, 3)
        if i % 2 == 0 or i == n - 1:
            out += cout
    return out


def fchardnet70(num_classes: int = 19) -> Shapes:
    """PingoLH/FCHarDNet ``hardnet(n_classes)``: ``base`` (4 stem convs, then per block: the block, a 1x1
    conv, an average pooling except after the last), ``conv1x1_up``, ``denseBlocksUp``, ``finalConv``."""
    first_ch, ch_list = (16, 24, 32, 48), (64, 96, 160, 224, 320)
    growth, layers = (10, 16, 18, 24, 32), (4, 4, 8, 8, 8)
    shapes: Shapes = {}
    cin = 3
    for i, (c, k) in enumerate(zip(first_ch, (3, 3, 3, 3))):
        conv_bn(shapes, f'base.{i}', cin, c, k)
        cin = c
    index, skips = 4, []
    for b in range(5):
        out = harmonic_block(shapes, f'base.{index}', cin, growth[b], layers[b])
        skips.append(out)
        conv_bn(shapes, f'base.{index + 1}', out, ch_list[b], 1)
        cin = ch_list[b]
        index += 3 if b < 4 else 2
    prev = cin
    for k, i in enumerate(range(3, -1, -1)):
        cur = prev + skips[i]
        conv_bn(shapes, f'conv1x1_up.{k}', cur, cur // 2, 1)
        prev = harmonic_block(shapes, f'denseBlocksUp.{k}', cur // 2, growth[i], layers[i])
    shapes['finalConv.weight'] = (num_classes, prev, 1, 1)
    shapes['finalConv.bias'] = (num_classes, )
    return shapes


def random_state(shapes: Shapes) -> Dict[str, torch.Tensor]:
    """A state dict of ``shapes`` with random values (integers for the BN counters)."""
    return {k: (torch.randint(0, 100, ()) if shape == () else torch.randn(shape)) for k, shape in shapes.items()}


def _dla_tree(shapes: Shapes, prefix: str, depth: int, cin: int, cout: int, level_root: bool, root_dim: int = 0):
    """The official ``Tree`` (BasicBlock, DLA-34): two children, a ``root`` (1x1 conv-BN over the children
    and, at level roots, the downsampled input) at depth 1, and a ``project`` (1x1 conv-BN) wherever the
    width changes (at depth > 1 too, where it is never called)."""
    root_dim = (root_dim or 2 * cout) + (cin if level_root else 0)
    if depth == 1:
        for child, c in (('tree1', cin), ('tree2', cout)):
            conv_bn(shapes, f'{prefix}.{child}', c, cout, 3, conv='conv1', norm='bn1')
            conv_bn(shapes, f'{prefix}.{child}', cout, cout, 3, conv='conv2', norm='bn2')
        conv_bn(shapes, f'{prefix}.root', root_dim, cout, 1, conv='conv', norm='bn')
    else:
        _dla_tree(shapes, f'{prefix}.tree1', depth - 1, cin, cout, False)
        _dla_tree(shapes, f'{prefix}.tree2', depth - 1, cout, cout, False, root_dim + cout)
    if cin != cout:
        conv_bn(shapes, f'{prefix}.project', cin, cout, 1, conv='0', norm='1')


def dla34up(num_classes: int = 19) -> Shapes:
    """ucbdrive/dla ``dla34up(classes)`` (``DLASeg('dla34', down_ratio=2)``): ``base`` (DLA-34 with its
    ImageNet ``fc``), ``dla_up.ida_{i}.{proj,up,node}_{k}``, ``fc.0`` and the fixed bilinear ``up``."""
    levels, ch = (1, 1, 1, 2, 2, 1), (16, 32, 64, 128, 256, 512)
    shapes: Shapes = {}
    conv_bn(shapes, 'base.base_layer', 3, ch[0], 7, conv='0', norm='1')
    conv_bn(shapes, 'base.level0', ch[0], ch[0], 3, conv='0', norm='1')
    conv_bn(shapes, 'base.level1', ch[0], ch[1], 3, conv='0', norm='1')
    for i in range(2, 6):
        _dla_tree(shapes, f'base.level{i}', levels[i], ch[i - 1], ch[i], level_root=i > 2)
    shapes['base.fc.weight'], shapes['base.fc.bias'] = (1000, ch[5], 1, 1), (1000, )
    channels = list(ch[1:])
    in_channels, scales = list(channels), [1, 2, 4, 8, 16]
    for i in range(len(channels) - 1):
        j = -i - 2
        out, ins, factors = channels[j], in_channels[j:], [s // scales[j] for s in scales[j:]]
        for k, (c, f) in enumerate(zip(ins, factors)):
            if c != out:
                conv_bn(shapes, f'dla_up.ida_{i}.proj_{k}', c, out, 1, conv='0', norm='1')
            if f != 1:
                shapes[f'dla_up.ida_{i}.up_{k}.weight'] = (out, 1, 2 * f, 2 * f)
        for k in range(1, len(ins)):
            conv_bn(shapes, f'dla_up.ida_{i}.node_{k}', 2 * out, out, 3, conv='0', norm='1')
        scales[j + 1:] = [scales[j]] * len(scales[j + 1:])
        in_channels[j + 1:] = [out] * len(in_channels[j + 1:])
    shapes['fc.0.weight'], shapes['fc.0.bias'] = (num_classes, ch[1], 1, 1), (num_classes, )
    shapes['up.weight'] = (num_classes, 1, 4, 4)
    return shapes
