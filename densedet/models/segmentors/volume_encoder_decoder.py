"""Volume segmentors: patch training, Gaussian sliding-window inference.

The window grid and Gaussian map are MONAI's; ``predict`` blends them slab by slab along D and
turns each finished slab into labels on the case's original grid (:mod:`.sliding_window`), so
memory does not grow with classes x volume; ``inference`` (MONAI's ``sliding_window_inference``)
returns the whole volume's logits. densedet adds the per-window mirror TTA, the crop of the
padding and the resize back to each case's original grid.
"""
from typing import Dict, Iterator, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModel

from densedet.errors import BadConfigError, DataKeyError
from densedet.evaluation.postprocessing import keep_largest_component, largest_component_classes
from densedet.registry import MMSEG_MODELS, MODELS
from densedet.structures import IGNORE_INDEX, VolumeDataSample, labels_from_probabilities, region_masks

from ..losses import deep_supervision_losses
from ..utils import resize_logits
from .sliding_window import SlabLabeller, blended_slabs, mirror_flip_axes

DEFAULT_LOSSES = (dict(type='CrossEntropyLoss', loss_weight=1.0), )


class BaseVolumeSegmentor(BaseModel):
    """What every volume segmentor shares: the losses, mmengine's ``forward`` modes and the
    sliding-window ``predict``. A subclass builds its network and implements
    :meth:`forward_logits` (inference logits at the input's size) and :meth:`loss`.

    Args:
        losses: loss configs (mmseg's ``CrossEntropyLoss``, densedet's ``SoftDiceLoss`` /
            ``VoxelWeightedCrossEntropyLoss``, ...), each called as
            ``loss(logits, target, ignore_index=255)``.
        test_cfg: ``roi_size`` (window, ``(D, H, W)``; default: the whole volume),
            ``overlap`` (0.5), ``sw_batch_size`` (1), ``blend`` (``'gaussian'`` |
            ``'constant'``), ``sigma_scale`` (0.125), ``flip_axes`` (e.g. ``[[2], [3], [4],
            [3, 4]]``: flip TTA, each entry a set of tensor dims to flip; logits averaged with
            the unflipped pass), ``mirror_axes`` (instead of ``flip_axes``: spatial axes 0-2
            mirrored in every combination, nnU-Net's TTA), ``keep_logits`` (store ``seg_logits`` on the samples),
            ``largest_component`` (classes, or the JSON of tools/analysis/decide_postprocessing.py,
            reduced to their largest connected component after the argmax), ``bounded_memory``
            (True: slab-wise blending and argmax, :mod:`.sliding_window`; False: MONAI's
            whole-volume logits first; the same labels).

    Region-based tasks (the samples carry the dataset's ``regions``): one output per region, the
    losses see per-region 0 / 1 targets (sigmoid losses), and ``predict`` paints the regions above
    0.5 in their ``order`` (:func:`densedet.structures.labels_from_probabilities`).

    ``predict`` returns labels on each case's *original* grid: the padding is cropped off (with a
    ``roi_size``, before the windows: they never see it) and a resampled case's logits are resized
    back to ``ori_shape`` before the argmax.
    """

    def __init__(self,
                 losses: Sequence[dict] = DEFAULT_LOSSES,
                 data_preprocessor: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor or dict(type='VolumeDataPreProcessor'),
                         init_cfg=init_cfg)
        self.losses = nn.ModuleList(MMSEG_MODELS.build(cfg) for cfg in losses)
        self.train_cfg = dict(train_cfg or {})
        self.test_cfg = dict(test_cfg or {})

    def forward_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, inputs: torch.Tensor, data_samples: list) -> Dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, inputs: torch.Tensor, data_samples: Optional[list] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.forward_logits(inputs)
        raise ValueError(f'{type(self).__name__}: invalid mode {mode!r} (loss, predict or tensor)')

    # --- training ---------------------------------------------------------------------------
    @staticmethod
    def _targets(data_samples: list) -> torch.Tensor:
        missing = [s.metainfo.get('case_id', i) for i, s in enumerate(data_samples) if 'gt_seg' not in s]
        if missing:
            raise DataKeyError(f'training needs labels; cases {missing} have no gt_seg')
        return torch.stack([s.gt_seg for s in data_samples]).long()

    @staticmethod
    def _check_regions(logits: torch.Tensor, regions: Optional[list]) -> None:
        if regions and logits.shape[1] != len(regions):
            names = ', '.join(r['name'] for r in regions)
            raise BadConfigError(f'the dataset declares {len(regions)} regions ({names}) but the model has '
                                 f'{logits.shape[1]} outputs: set decode_head.num_classes={len(regions)}')

    def region_targets(self, logits: torch.Tensor, target: torch.Tensor, data_samples: list) -> torch.Tensor:
        """Class indices, or per-region 0 / 1 / ignore maps ``(N, R, ...)`` when the samples carry the
        dataset's ``regions`` (region-based training: sigmoid losses)."""
        regions = data_samples[0].metainfo.get('regions')
        if not regions:
            return target
        self._check_regions(logits, regions)
        for loss in self.losses:
            if type(loss).__name__ == 'CrossEntropyLoss' and not getattr(loss, 'use_sigmoid', False):
                raise BadConfigError('region-based training needs sigmoid losses: CrossEntropyLoss(use_sigmoid=True, '
                                     'avg_non_ignore=True) and/or SoftDiceLoss, not a softmax CrossEntropyLoss')
        return region_masks(target, regions)

    def compute_losses(self, logits: torch.Tensor, target: torch.Tensor, prefix: str = '',
                       scale: float = 1.0) -> Dict[str, torch.Tensor]:
        losses = {}
        for loss in self.losses:
            value = loss(logits, target, ignore_index=IGNORE_INDEX) * scale
            key = prefix + loss.loss_name
            losses[key] = losses[key] + value if key in losses else value
        return losses

    # --- inference --------------------------------------------------------------------------
    def _window_predictor(self):
        flips = self.test_cfg.get('flip_axes')
        if not flips and self.test_cfg.get('mirror_axes'):
            flips = mirror_flip_axes(self.test_cfg['mirror_axes'])
        flips = [tuple(f) for f in flips or []]

        def predict(windows: torch.Tensor) -> torch.Tensor:
            logits = self.forward_logits(windows).float()  # blended in float32, also under autocast
            for dims in flips:  # mirror TTA inside each window (nnU-Net's scheme)
                logits = logits + torch.flip(self.forward_logits(torch.flip(windows, dims)).float(), dims)
            return logits.div_(1 + len(flips)) if flips else logits

        return predict

    def inference(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits of the whole (padded) batch, by MONAI's Gaussian-weighted sliding window
        (windows ``int(roi * (1 - overlap))`` apart, the last one flush with the border; inputs
        smaller than the window zero-padded on both sides and cropped back)."""
        from monai.inferers import sliding_window_inference
        cfg = self.test_cfg
        roi = cfg.get('roi_size') or tuple(inputs.shape[2:])
        return sliding_window_inference(inputs, tuple(roi), cfg.get('sw_batch_size', 1), self._window_predictor(),
                                        overlap=cfg.get('overlap', 0.5), mode=self._blend_mode(),
                                        sigma_scale=cfg.get('sigma_scale', 0.125))

    def inference_slabs(self, inputs: torch.Tensor) -> Iterator[tuple]:
        """The same logits as :meth:`inference` for one case, slab by slab along D
        (:func:`~densedet.models.segmentors.sliding_window.blended_slabs`): memory one window deep."""
        cfg = self.test_cfg
        return blended_slabs(inputs, self._window_predictor(), cfg.get('roi_size'), cfg.get('overlap', 0.5),
                             cfg.get('sw_batch_size', 1), self._blend_mode(), cfg.get('sigma_scale', 0.125))

    def _blend_mode(self) -> str:
        blend = self.test_cfg.get('blend', 'gaussian')
        if blend not in ('gaussian', 'constant'):
            raise BadConfigError(f"test_cfg.blend must be 'gaussian' or 'constant', got {blend!r}")
        return blend

    def predict(self, inputs: torch.Tensor, data_samples: Optional[list] = None) -> list:
        if data_samples is None:
            data_samples = [VolumeDataSample(metainfo=dict(img_shape=tuple(inputs.shape[2:]))) for _ in inputs]
        keep = self.test_cfg.get('keep_logits', False)
        largest = largest_component_classes(self.test_cfg.get('largest_component'))
        windows = bool(self.test_cfg.get('roi_size'))
        for i, sample in enumerate(data_samples):
            shape = tuple(sample.metainfo.get('img_shape', inputs.shape[2:]))
            ori_shape = tuple(sample.metainfo.get('ori_shape', shape))
            regions = sample.metainfo.get('regions')
            case = inputs[i:i + 1]
            if windows:  # every window is roi_size: the preprocessor's padding to the network's stride is not
                # needed, and its zeros look like tissue after normalisation (mirrored windows saw it at the start)
                case = case[(slice(None), slice(None)) + tuple(slice(0, s) for s in shape)]

            def to_labels(logits, regions=regions):
                if regions:
                    self._check_regions(logits[None], regions)
                    return labels_from_probabilities(logits.sigmoid(), regions)
                return logits.argmax(0)  # (a transposed view in the bounded path: argmax reads it in place)

            if self.test_cfg.get('bounded_memory', True):
                labeller = SlabLabeller(shape, ori_shape, to_labels, keep_logits=keep)
                for d_start, slab in self.inference_slabs(case):
                    labeller.add(d_start, slab)
                sample.pred_seg, logits = labeller.result()
            else:  # the whole volume's logits, then the argmax (MONAI's path)
                logits = self.inference(case)
                logits = logits[(slice(None), slice(None)) + tuple(slice(0, s) for s in shape)]
                logits = resize_logits(logits, ori_shape)[0]
                sample.pred_seg = to_labels(logits)
            if largest:
                sample.pred_seg = keep_largest_component(sample.pred_seg, largest)
            if keep:
                sample.seg_logits = logits
        return data_samples


@MODELS.register_module()
class VolumeEncoderDecoder(BaseVolumeSegmentor):
    """``backbone`` (+ ``neck``) + ``decode_head`` on ``(N, C, D, H, W)`` volumes.

    Any head whose ``forward`` maps the feature list to logits works (densedet's
    ``DenseUNetHead``, ``UNetPlusPlusHead`` and ``FCDenseNetHead`` with ``spatial_dims=3``).
    A head with deep supervision (``forward_heads`` + ``deep_supervision``) is trained on
    every head output, weighted by its ``loss_weights``. ``losses`` / ``test_cfg``: see
    :class:`BaseVolumeSegmentor`.
    """

    def __init__(self,
                 backbone: dict,
                 decode_head: dict,
                 neck: Optional[dict] = None,
                 losses: Sequence[dict] = DEFAULT_LOSSES,
                 data_preprocessor: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(losses, data_preprocessor, train_cfg, test_cfg, init_cfg)
        self.backbone = MMSEG_MODELS.build(backbone)
        self.neck = MMSEG_MODELS.build(neck) if neck is not None else None
        self.decode_head = MMSEG_MODELS.build(decode_head)

    # --- forward passes ---------------------------------------------------------------------
    def extract_feat(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        feats = self.backbone(inputs)
        return list(self.neck(feats) if self.neck is not None else feats)

    def forward_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """Inference logits at the input's size."""
        return resize_logits(self.decode_head(self.extract_feat(inputs)), inputs.shape[2:])

    def forward_train_logits(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        """The logits the losses see: one tensor, or one per deep-supervision head."""
        feats = self.extract_feat(inputs)
        head = self.decode_head
        if getattr(head, 'deep_supervision', False) and hasattr(head, 'forward_heads'):
            outs = head.forward_heads(feats)
        else:
            outs = [head(feats)]
        return [resize_logits(o, inputs.shape[2:]) for o in outs]

    def loss(self, inputs: torch.Tensor, data_samples: list) -> Dict[str, torch.Tensor]:
        outs = self.forward_train_logits(inputs)
        target = self.region_targets(outs[0], self._targets(data_samples), data_samples)
        if len(outs) == 1:
            return self.compute_losses(outs[0], target)
        weights = getattr(self.decode_head, 'loss_weights', [1.0] * len(outs))
        return deep_supervision_losses(outs, weights, lambda logits: self.compute_losses(logits, target))
