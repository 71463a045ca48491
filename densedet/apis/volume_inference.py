"""Volume inference: ``init_volume_model`` + ``inference_volume`` for one NIfTI case,
``find_cases`` + ``predict_cases`` for folders of them (nnU-Net's ``-i`` / ``-o`` habit).

    model = init_volume_model('configs/demo/denseunet3d_msd-liver_demo.py', 'work_dirs/demo_3d/iter_1000.pth')
    sample = inference_volume(model, 'case.nii.gz', out_path='case_pred.nii.gz')

The config's test pipeline prepares the file (intensity window, resampling, ...); the
prediction comes back on the file's own voxel grid and is written with its affine and
header. Label values are the dataset's own when the checkpoint records them
(``dataset_meta['label_values']``), else the class indices.
"""
import copy
import os
import os.path as osp
import re
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope

from densedet.engine.checkpoint import load_model_checkpoint
from densedet.errors import BadConfigError, BadInputError, DataNotFoundError, DensedetError
from densedet.evaluation import write_prediction

from .config import apply_speed_settings, is_volume_model, load_config
from .precision import inference_autocast


def init_volume_model(config: Union[str, Config], checkpoint: Optional[str] = None, device: str = 'cpu',
                      tta: bool = False, mirror_axes: Optional[Sequence[int]] = None, overlap: Optional[float] = None):
    """Builds the config's volume segmentor, loads ``checkpoint`` and keeps the config (``model.cfg``).
    ``tta`` / ``mirror_axes`` / ``overlap``: :func:`~densedet.apis.config.apply_speed_settings`."""
    from densedet.registry import MMSEG_MODELS as MODELS
    cfg = load_config(config) if isinstance(config, str) else copy.deepcopy(config)  # the caller's stays as it is
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if not is_volume_model(cfg.model):
        raise BadConfigError(f'{getattr(cfg, "filename", "config")}: model type {cfg.model.get("type")!r} is not a '
                             'volume segmentor (VolumeEncoderDecoder, HDenseUNet, ...)')
    apply_speed_settings(cfg.model, tta=tta, mirror_axes=mirror_axes, overlap=overlap)
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


NIFTI = ('.nii.gz', '.nii')
CHANNEL_FILE = re.compile(r'^(?P<case>.+)_(?P<channel>\d{4})(?P<ext>\.nii(\.gz)?)$')  # nnU-Net: CASE_0000.nii.gz


def _stem(path: str) -> str:
    name = osp.basename(path)
    return next((name[:-len(e)] for e in NIFTI if name.endswith(e)), name)


def find_cases(inputs: Sequence[str]) -> List[Tuple[str, List[str], str]]:
    """``(case_id, channel files, output file name)`` of every case in ``inputs``:

    * a NIfTI file: one case, written under its own name;
    * a folder: its NIfTI files, one case each, or, when every name ends in ``_XXXX`` (nnU-Net's
      ``CASE_0000.nii.gz``), one case per ``CASE`` with its channel files in order, written as
      ``CASE.nii.gz``;
    * a list file (``.txt``): one case per line, its channel files separated by spaces (a file
      that does not exist fails with its case, not before).
    """
    cases = []
    for item in inputs:
        if osp.isdir(item):
            files = sorted(f for f in os.listdir(item) if f.endswith(NIFTI) and not f.startswith('.'))
            if not files:
                raise BadInputError(f'{item}: no NIfTI files (.nii / .nii.gz) in this folder')
            matches = [CHANNEL_FILE.match(f) for f in files]
            if all(matches):
                grouped = {}
                for m in matches:
                    grouped.setdefault(m['case'], []).append(m)
                for case, ms in grouped.items():
                    cases.append((case, [osp.join(item, m.group(0)) for m in sorted(ms, key=lambda m: m['channel'])],
                                  case + ms[0]['ext']))
            else:
                cases += [(_stem(f), [osp.join(item, f)], f) for f in files]
        elif item.endswith('.txt'):
            if not osp.isfile(item):
                raise DataNotFoundError(f'case list not found: {item}')
            with open(item) as f:
                lines = [line.split() for line in f if line.strip() and not line.lstrip().startswith('#')]
            if not lines:
                raise BadInputError(f'{item}: the case list is empty')
            cases += [(_stem(paths[0]), paths, osp.basename(paths[0])) for paths in lines]
        elif item.endswith(NIFTI):
            cases.append((_stem(item), [item], osp.basename(item)))
        elif not osp.exists(item):
            raise DataNotFoundError(f'input not found: {item}')
        else:
            raise BadInputError(f'{item}: not a NIfTI file (.nii / .nii.gz), a folder of them or a .txt case list')
    names = {}
    for _, paths, name in cases:
        if name in names:
            raise BadInputError(f'{paths[0]} and {names[name]} would both be written as {name}')
        names[name] = paths[0]
    return cases


def predict_cases(predict: Callable[[List[str], str], object], cases: Sequence[tuple], out_dir: str,
                  overwrite: bool = False, log: Callable = print) -> dict:
    """Runs ``predict(channel files, output path)`` for every case of :func:`find_cases` whose
    output does not exist yet (all of them with ``overwrite``), with a progress bar (cases/s). A
    case that fails with a user error (unreadable file, wrong shape, ...) is listed at the end and
    the others go on; an error when none succeeded. Predictions are written atomically, so a killed
    run leaves no half-written file and a rerun continues where it stopped.

    Returns ``dict(written=[...], skipped=[...], failed=[(case_id, message), ...])``."""
    from tqdm import tqdm
    for _, paths, name in cases:
        if any(osp.realpath(osp.join(out_dir, name)) == osp.realpath(p) for p in paths):
            raise BadInputError(f'{paths[0]}: its prediction would overwrite it; choose another output folder')
    os.makedirs(out_dir, exist_ok=True)
    todo = [c for c in cases if overwrite or not osp.isfile(osp.join(out_dir, c[2]))]
    skipped = [osp.join(out_dir, c[2]) for c in cases if c not in todo]
    if skipped:
        log(f'{len(skipped)} of {len(cases)} cases already predicted in {out_dir}: skipped (--overwrite to redo)')
    written, failed = [], []
    with tqdm(total=len(todo), unit='case', dynamic_ncols=True) as bar:
        for case_id, paths, name in todo:
            out = osp.join(out_dir, name)
            bar.set_postfix_str(case_id, refresh=False)
            try:
                predict(paths, out)
            except DensedetError as e:
                failed.append((case_id, str(e)))
            else:
                written.append(out)
                bar.write(f'{paths[0]} -> {out}')
            bar.update()
    if failed:
        log(f'{len(failed)} of {len(todo)} cases could not be predicted:')
        for case_id, message in failed:
            log(f'  {case_id}: {message}')
    if todo and not written:
        raise BadInputError(f'none of the {len(todo)} cases could be predicted (first: {failed[0][1]})')
    return dict(written=written, skipped=skipped, failed=failed)
