"""Weight initialisation shared by the backbones and heads."""
import torch.nn as nn

_CONVS = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def kaiming_init_convs(module: nn.Module, uniform: bool = False, zero_bias: bool = False, **kwargs):
    """He init of every (transposed) conv in ``module``: normal (timm) or uniform (Lasagne's
    ``HeUniform``), biases zeroed with ``zero_bias``; ``kwargs`` go to ``nn.init.kaiming_*``."""
    init = nn.init.kaiming_uniform_ if uniform else nn.init.kaiming_normal_
    for m in module.modules():
        if isinstance(m, _CONVS):
            init(m.weight, **kwargs)
            if zero_bias and m.bias is not None:
                nn.init.zeros_(m.bias)
