"""What every densedet backbone shares: arch lookup, output bookkeeping, freezing, weight loading."""
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from densedet.errors import BadConfigError, ConfigKeyError

from ..utils import freeze, load_pretrained_weights, set_norm_eval, validate_frozen_stages, validate_out_indices


class DenseBackbone(BaseModule):
    """Base class of the densedet backbones (mmseg/mmdet conventions outside, timm inside).

    ``__init__`` takes and checks the arguments every family shares, by keyword only (ten of them:
    passed by position, one added or reordered would silently shift the rest): ``arch`` (a name of
    :attr:`arch_settings`, an int for numbered archs, or a dict), ``out_indices``,
    ``frozen_stages``, ``output_stride`` (8, 16, 32 or 64; 32 by default: no dilation; families without
    dilated variants keep their own stride),
    ``norm_eval``, ``norm_cfg``, ``act_cfg``, ``with_cp``, ``init_cfg`` (and mmseg's deprecated
    ``pretrained``). A family then builds its modules (:meth:`_stride_plan` gives the
    stride / dilation of each level for ``output_stride``), fills ``feature_info`` (``num_chs``,
    ``reduction``, ``module`` per output level, timm's convention) and calls
    :meth:`_init_outputs`. It implements :meth:`_frozen_modules`, names the upstream classifier's
    keys in :attr:`classifier_prefixes` and, for checkpoints whose names differ from its own,
    overrides :meth:`checkpoint_filter`. Layer-wise lr decay groups (:meth:`layer_group_id`) follow from
    ``feature_info``.
    """

    arch_settings: Dict[str, dict] = {}
    #: key prefixes of the upstream ImageNet classifier, dropped by :meth:`checkpoint_filter`
    classifier_prefixes: Tuple[str, ...] = ()

    def __init__(self,
                 *,
                 arch: Union[str, int, dict, None] = None,
                 out_indices: Optional[Sequence[int]] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 output_stride: int = 32,
                 norm_eval: bool = False,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 pretrained: Optional[str] = None):
        # mmseg's EncoderDecoder hands ``model.pretrained`` (set by 23 of mmseg's model bases) to
        # the backbone; like mmseg's own backbones, take it as a deprecated spelling of init_cfg.
        if pretrained is not None:
            if init_cfg is not None:
                raise BadConfigError(f'{type(self).__name__}: init_cfg and pretrained cannot both be set')
            warnings.warn(f'{type(self).__name__}: pretrained is deprecated, use '
                          f"init_cfg=dict(type='Pretrained', checkpoint={pretrained!r})")
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        #: the resolved arch settings (a dict); ``arch_name`` is its name or ``'custom'``
        self.arch = self._resolve_arch(arch) if arch is not None else None
        if output_stride not in (8, 16, 32, 64):
            raise BadConfigError(f'{type(self).__name__}: output_stride must be 8, 16, 32 or 64, got {output_stride}')
        self.output_stride = output_stride
        self._requested_out_indices = out_indices
        self._requested_frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.with_cp = with_cp

    def _resolve_arch(self, arch: Union[str, int, dict]) -> dict:
        """Returns the settings of ``arch`` (a name, an int for numbered archs, or a dict)."""
        owner = type(self).__name__
        if isinstance(arch, int):
            arch = str(arch)
        if isinstance(arch, str):
            if arch not in self.arch_settings:
                raise ConfigKeyError(f'{owner}: unknown arch {arch!r}; choose one of {sorted(self.arch_settings)} '
                                     'or pass a dict')
            self.arch_name = arch
            return self.arch_settings[arch]
        if not isinstance(arch, dict):
            raise TypeError(f'{owner}: arch must be a name or a dict, got {type(arch).__name__}')
        self.arch_name = 'custom'
        return arch

    def _stride_plan(self, reduction: int, num_levels: int) -> List[Tuple[bool, int, int]]:
        """``(downsample, reduction, dilation)`` for ``num_levels`` levels that each halve the
        resolution in the reference network, starting from ``reduction``: once ``output_stride``
        is reached a level keeps the resolution and doubles the dilation instead (mmseg's
        ``-d8`` / ``-d16`` backbones)."""
        plan, dilation = [], 1
        for _ in range(num_levels):
            downsample = reduction < self.output_stride
            if downsample:
                reduction *= 2
            else:
                dilation *= 2
            plan.append((downsample, reduction, dilation))
        return plan

    def _init_outputs(self, feature_info: List[dict]):
        """Validates ``out_indices`` (``None``: every level) and ``frozen_stages`` against
        ``feature_info`` and freezes."""
        owner = type(self).__name__
        #: channels / stride / module of every output level (timm's ``feature_info``).
        self.feature_info = feature_info
        out_indices = self._requested_out_indices
        if out_indices is None:
            out_indices = range(len(feature_info))
        self.out_indices = validate_out_indices(out_indices, len(feature_info), owner)
        self.frozen_stages = validate_frozen_stages(self._requested_frozen_stages, len(feature_info), owner)
        #: channels and strides of the returned outputs, in order.
        self.out_channels = tuple(feature_info[i]['num_chs'] for i in self.out_indices)
        self.out_strides = tuple(feature_info[i]['reduction'] for i in self.out_indices)
        self._freeze_stages()

    @property
    def num_layer_groups(self) -> int:
        """Groups for layer-wise lr decay: the stem, then one per ``feature_info`` level."""
        return 1 + len(self.feature_info)

    def layer_group_id(self, param_name: str) -> int:
        """Layer-wise lr-decay group of a backbone parameter (timm's ``group_matcher`` idea,
        derived from ``feature_info``): 0 for the stem (what comes before the first level's
        module), ``i + 1`` for level ``i``'s module and what sits between it and the previous
        level (transitions, downsampling), :attr:`num_layer_groups` after the last level.
        Modules are taken in registration order, which is the order they run in for every family
        (tests/models/backbones/test_layer_groups.py checks it); a family that registers
        otherwise overrides this method."""
        groups = self.__dict__.get('_layer_groups')
        if groups is None:
            groups = self.__dict__['_layer_groups'] = self._layer_groups_from_feature_info()
        self._require_parameter(param_name)
        return groups[param_name]

    def _require_parameter(self, param_name: str) -> None:
        """The layer-group contract: a name that is not one of this backbone's parameters is an error
        (a typo in a ``paramwise_cfg`` would otherwise get some group silently)."""
        names = self.__dict__.get('_parameter_names')
        if names is None:
            names = self.__dict__['_parameter_names'] = frozenset(n for n, _ in self.named_parameters())
        if param_name not in names:
            raise ConfigKeyError(f'{type(self).__name__}: no parameter named {param_name!r}')

    def _layer_groups_from_feature_info(self) -> Dict[str, int]:
        prefixes = [info['module'] + '.' for info in self.feature_info]
        groups, passed = {}, 0  # passed: levels whose module has been seen
        for name, _ in self.named_parameters():
            level = next((i for i, prefix in enumerate(prefixes) if name.startswith(prefix)), None)
            if level is not None:
                groups[name] = level + 1
                passed = max(passed, level + 1)
            else:
                groups[name] = 0 if passed == 0 else passed + 1
        return groups

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

    def checkpoint_filter(self, state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Maps an upstream checkpoint (timm / torchvision / official) onto this module's names.
        By default it drops the keys under :attr:`classifier_prefixes`; a family whose names
        differ from upstream's overrides this method."""
        return {k: v for k, v in state_dict.items() if not k.startswith(self.classifier_prefixes)}

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


__all__ = ['DenseBackbone']
