"""DenseBackbone (densedet/models/backbones/base.py): a family written from the README's "Extending
densedet" recipe works with the base's defaults."""
import pytest
import torch
import torch.nn as nn

from densedet.errors import BadConfigError, ConfigKeyError
from densedet.models.backbones.base import DenseBackbone


class TinyFamily(DenseBackbone):
    """The recipe: an arch table, the shared arguments passed to super().__init__ by name (no
    output_stride default of its own), levels from _stride_plan, feature_info, _init_outputs."""

    arch_settings = {'tiny': dict(widths=(4, 8, 16, 32))}

    def __init__(self, arch='tiny', **kwargs):
        super().__init__(arch=arch, **kwargs)
        self.stem = nn.Conv2d(3, 4, 4, stride=4)
        levels, feature_info, channels = [], [], 4
        plan = [(False, 4, 1)] + self._stride_plan(4, 3)  # level 0 at the stem's stride 4, then halving
        for i, (downsample, reduction, dilation) in enumerate(plan):
            width = self.arch['widths'][i]
            levels.append(nn.Conv2d(channels, width, 3, stride=2 if downsample else 1, padding=dilation,
                                    dilation=dilation))
            feature_info.append(dict(num_chs=width, reduction=reduction, module=f'levels.{i}'))
            channels = width
        self.levels = nn.ModuleList(levels)
        self._init_outputs(feature_info)

    def _frozen_modules(self):
        return [self.stem, *self.levels[:max(self.frozen_stages, 0)]]

    def forward(self, x):
        x, outs = self.stem(x), []
        for i, level in enumerate(self.levels):
            x = level(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


def test_a_family_without_its_own_output_stride_default_builds_at_stride_32():
    model = TinyFamily()  # the base's default once was None: TypeError in _stride_plan
    assert model.output_stride == 32
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[-1] for o in outs] == [16, 8, 4, 2] and model.out_strides == (4, 8, 16, 32)
    dilated = TinyFamily(output_stride=8)
    assert [o.shape[-1] for o in dilated(torch.randn(1, 3, 64, 64))] == [16, 8, 8, 8]


def test_bad_shared_arguments_are_config_errors():
    with pytest.raises(BadConfigError, match='output_stride must be 8, 16, 32 or 64, got None'):
        TinyFamily(output_stride=None)
    with pytest.raises(ConfigKeyError, match="unknown arch 'huge'"):
        TinyFamily(arch='huge')
    with pytest.raises(BadConfigError, match=r'out_indices \[4\] out of range'):
        TinyFamily(out_indices=(4, ))
