"""What every densedet backbone shares: arch lookup, output bookkeeping, freezing, weight loading."""
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from ..utils import freeze, load_pretrained_weights, set_norm_eval, validate_frozen_stages, validate_out_indices


class DenseBackbone(BaseModule):
    """Base class of the densedet backbones (mmseg/mmdet conventions outside, timm inside).

    A family defines :attr:`arch_settings`, builds its modules, fills ``feature_info``
    (``num_chs``, ``reduction``, ``module`` per output level) and calls
    :meth:`_init_outputs`; it implements :meth:`_frozen_modules` and, for checkpoints
    whose names differ from its own, :meth:`checkpoint_filter`.
    """

    arch_settings: Dict[str, dict] = {}
    norm_eval: bool = False

    def __init__(self, init_cfg: Optional[Union[dict, List[dict]]] = None, pretrained: Optional[str] = None):
        # mmseg's EncoderDecoder hands ``model.pretrained`` (set by 23 of mmseg's model bases) to
        # the backbone; like mmseg's own backbones, take it as a deprecated spelling of init_cfg.
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError(f'{type(self).__name__}: init_cfg and pretrained cannot both be set')
            warnings.warn(f'{type(self).__name__}: pretrained is deprecated, use '
                          f"init_cfg=dict(type='Pretrained', checkpoint={pretrained!r})")
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)

    def _resolve_arch(self, arch: Union[str, int, dict]) -> dict:
        """Returns the settings of ``arch`` (a name, an int for numbered archs, or a dict)."""
        owner = type(self).__name__
        if isinstance(arch, int):
            arch = str(arch)
        if isinstance(arch, str):
            if arch not in self.arch_settings:
                raise KeyError(f'{owner}: unknown arch {arch!r}; choose one of {sorted(self.arch_settings)} '
                               'or pass a dict')
            self.arch_name = arch
            return self.arch_settings[arch]
        if not isinstance(arch, dict):
            raise TypeError(f'{owner}: arch must be a name or a dict, got {type(arch).__name__}')
        self.arch_name = 'custom'
        return arch

    def _check_output_stride(self, output_stride: int) -> int:
        if output_stride not in (8, 16, 32):
            raise ValueError(f'{type(self).__name__}: output_stride must be 8, 16 or 32, got {output_stride}')
        return output_stride

    def _init_outputs(self, feature_info: List[dict], out_indices: Sequence[int], frozen_stages: int):
        """Validates ``out_indices``/``frozen_stages`` against ``feature_info`` and freezes."""
        owner = type(self).__name__
        #: channels / stride / module of every output level (timm's ``feature_info``).
        self.feature_info = feature_info
        self.out_indices = validate_out_indices(out_indices, len(feature_info), owner)
        self.frozen_stages = validate_frozen_stages(frozen_stages, len(feature_info), owner)
        #: channels and strides of the returned outputs, in order.
        self.out_channels = tuple(feature_info[i]['num_chs'] for i in self.out_indices)
        self.out_strides = tuple(feature_info[i]['reduction'] for i in self.out_indices)
        self._freeze_stages()

    def _frozen_modules(self) -> List[nn.Module]:
        """The modules ``frozen_stages`` freezes (the stem for 0, plus levels < k for k)."""
        raise NotImplementedError

    def _freeze_stages(self):
        if self.frozen_stages >= 0:
            freeze(self._frozen_modules())

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            set_norm_eval(self)
        return self

    @staticmethod
    def checkpoint_filter(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Maps an upstream checkpoint onto this module's names (identity by default)."""
        return state_dict

    def _default_init(self):
        """Initialization when no ``init_cfg`` is given (the reference implementation's)."""

    def init_weights(self):
        if isinstance(self.init_cfg, dict) and self.init_cfg.get('type') == 'Pretrained':
            load_pretrained_weights(self, self.init_cfg['checkpoint'], prefix=self.init_cfg.get('prefix'),
                                    filter_fn=self.checkpoint_filter)
            self._is_init = True
        elif self.init_cfg is None:
            self._default_init()
            self._is_init = True
        else:
            super().init_weights()


def drop_prefixes(*prefixes: str) -> Callable[[dict], dict]:
    """A ``checkpoint_filter`` that drops the keys under ``prefixes`` (classifier heads)."""

    def drop(state_dict):
        return {k: v for k, v in state_dict.items() if not k.startswith(prefixes)}

    return drop


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


__all__ = ['DenseBackbone', 'drop_prefixes', 'kaiming_init_convs']
