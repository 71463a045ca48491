"""Volume inference for one NIfTI file: ``init_volume_model`` + ``inference_volume``.

    model = init_volume_model('configs/demo/denseunet3d_msd-liver_demo.py', 'work_dirs/demo_3d/iter_1000.pth')
    sample = inference_volume(model, 'case.nii.gz', out_path='case_pred.nii.gz')

The config's test pipeline prepares the file (intensity window, resampling, ...); the
prediction comes back on the file's own voxel grid and is written with its affine and
header. Label values are the dataset's own when the checkpoint records them
(``dataset_meta['label_values']``), else the class indices.
"""
import os.path as osp
from typing import Optional, Sequence, Union

import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope

from densedet.engine.checkpoint import load_model_checkpoint
from densedet.errors import BadConfigError
from densedet.evaluation import write_prediction

from .config import enable_flip_tta, is_volume_model, load_config
from .precision import inference_autocast


def init_volume_model(config: Union[str, Config], checkpoint: Optional[str] = None, device: str = 'cpu',
                      tta: bool = False):
    """Builds the config's volume segmentor, loads ``checkpoint`` and keeps the config (``model.cfg``)."""
    from densedet.registry import MMSEG_MODELS as MODELS
    cfg = load_config(config) if isinstance(config, str) else config
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if not is_volume_model(cfg.model):
        raise BadConfigError(f'{getattr(cfg, "filename", "config")}: model type {cfg.model.get("type")!r} is not a '
                             'volume segmentor (VolumeEncoderDecoder, HDenseUNet, ...)')
    if tta:
        enable_flip_tta(cfg.model)
    model = MODELS.build(cfg.model)
    model.dataset_meta = {}
    if checkpoint is not None:
        ckpt = load_model_checkpoint(model, checkpoint, config=getattr(cfg, 'filename', None))
        model.dataset_meta = ckpt.get('meta', {}).get('dataset_meta', {}) or {}
    model.cfg = cfg
    return model.to(device).eval()


def inference_volume(model, path: Union[str, Sequence[str]], out_path: Optional[str] = None, amp: bool = False):
    """Segments one case (a NIfTI file, or one file per channel) and optionally writes the
    prediction as NIfTI; returns the :class:`~densedet.structures.VolumeDataSample`. ``amp``: the
    network under autocast (bf16 on CPU, fp16 on CUDA); windows are blended in float32."""
    paths = [path] if isinstance(path, str) else list(path)
    meta = getattr(model, 'dataset_meta', {}) or {}
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
    case_id = osp.basename(paths[0]).split('.nii')[0]  # error messages name the case
    info = dict(case_id=case_id, img_paths=paths, seg_path=None, label_values=meta.get('label_values'),
                classes=meta.get('classes'), num_channels=len(meta['modalities']) if meta.get('modalities') else None)
    data = pseudo_collate([pipeline(info)])
    with torch.no_grad(), inference_autocast(model, amp):
        sample = model.test_step(data)[0]
    if out_path is not None:
        write_prediction(sample.pred_seg, out_path, sample.metainfo, meta.get('label_values'))
    return sample
