"""Config handling shared by tools/train.py and tools/test.py (mmseg- and mmdet-style configs)."""
import os.path as osp
from typing import Optional, Sequence

from mmengine.config import Config

from densedet.compat import _has_accelerator
from densedet.errors import BadInputError, ConfigKeyError, DataNotFoundError
from densedet.models.segmentors.sliding_window import mirror_flip_axes


def load_config(path: str) -> Config:
    """``Config.fromfile`` with one clear error for a path that is not a file (mmengine's is a
    ``FileNotFoundError`` traceback)."""
    if not osp.isfile(path):
        raise DataNotFoundError(f'config file not found: {path}')
    return Config.fromfile(path)


def prepare_config(cfg: Config, config_path: str, work_dir: Optional[str] = None,
                   cfg_options: Optional[dict] = None, launcher: str = 'none',
                   check_data: bool = True, load_from: Optional[str] = None, resume: bool = False) -> Config:
    """Applies the command-line options the way mmseg's/mmdet's tools do.

    The work dir is ``work_dir`` if given, else ``cfg.work_dir``, else
    ``./work_dirs/<config name>``. With ``check_data``, every dataloader's
    ``data_root`` must exist (one clear error naming the key and path). ``load_from``
    (``tools/test.py``'s checkpoint) replaces the config's; with ``resume`` and a checkpoint
    in the work dir, the config's ``load_from`` (a previous stage) is dropped so mmengine
    resumes this run rather than restarting from that stage.
    """
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])
    if check_data:
        check_data_roots(cfg)
    cfg.resume = resume or bool(cfg.get('resume', False))
    if load_from is not None:
        cfg.load_from = load_from
    elif resume and osp.isfile(osp.join(cfg.work_dir, 'last_checkpoint')):
        cfg.load_from = None
    resolve_load_from(cfg)
    return cfg


def enable_exact_resume(cfg: Config) -> None:
    """Training runs continue exactly after ``--resume`` (:class:`densedet.engine.RandomStateHook`).

    Adds the hook to ``custom_hooks`` (once). When resuming a config without
    ``randomness.seed``, the seed mmengine drew for the interrupted run is read from its
    checkpoint: the data workers are seeded when the loop is built, before mmengine reads the
    checkpoint, and would otherwise get a new seed."""
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(hook.get('type') in ('RandomStateHook', 'densedet.RandomStateHook') for hook in hooks):
        cfg.custom_hooks = hooks + [dict(type='RandomStateHook')]
    randomness = cfg.get('randomness') or {}
    if not cfg.get('resume') or randomness.get('seed') is not None:
        return
    from mmengine.runner.checkpoint import find_latest_checkpoint
    checkpoint = cfg.get('load_from') or find_latest_checkpoint(cfg.work_dir)
    if checkpoint and osp.isfile(checkpoint):
        import torch

        from densedet.engine.checkpoint import safe_load
        seed = safe_load(torch.load, checkpoint, map_location='cpu', mmap=True).get('meta', {}).get('seed')
        if seed is not None:
            cfg.randomness = dict(randomness, seed=seed)


def resolve_load_from(cfg: Config) -> None:
    """``load_from`` may name a work dir's ``last_checkpoint`` file (mmengine's pointer to the
    latest checkpoint): staged recipes chain their stages that way. It is replaced by the
    checkpoint path it holds; a missing pointer is one clear error."""
    load_from = cfg.get('load_from')
    if not load_from or osp.basename(load_from) != 'last_checkpoint':
        return
    if not osp.isfile(load_from):
        raise DataNotFoundError(f'load_from: {load_from} does not exist; train the previous stage first '
                                '(or set load_from to a checkpoint with --cfg-options load_from=PATH)')
    with open(load_from) as f:
        cfg.load_from = f.read().strip()


def check_data_roots(cfg: Config) -> None:
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        dataset = loader.get('dataset', {})
        while 'dataset' in dataset:  # RepeatDataset / ClassBalancedDataset wrappers
            dataset = dataset['dataset']
        root = dataset.get('data_root')
        if root and not osp.isdir(root):
            if dataset.get('type') == 'PreprocessedVolumeDataset':
                raise DataNotFoundError(f'{key}.dataset.data_root: directory {root!r} does not exist: plan and '
                                        'preprocess the task first (tools/data/plan_volumes.py CONFIG, then '
                                        'tools/data/preprocess_volumes.py CONFIG)')
            raise DataNotFoundError(f'{key}.dataset.data_root: directory {root!r} does not exist '
                                    '(prepare the dataset there or override it with --cfg-options)')


def enable_amp(cfg: Config) -> None:
    """fp16 ``AmpOptimWrapper`` on an accelerator, bf16 ``CPUAmpOptimWrapper`` on CPU."""
    wrapper = cfg.optim_wrapper
    if _has_accelerator():
        if wrapper.get('type') not in ('AmpOptimWrapper', 'CPUAmpOptimWrapper'):
            wrapper.type = 'AmpOptimWrapper'
            wrapper.setdefault('loss_scale', 'dynamic')
    else:
        wrapper.type = 'CPUAmpOptimWrapper'
        wrapper.pop('loss_scale', None)
        wrapper.pop('dtype', None)


def enable_test_amp(cfg: Config) -> bool:
    """``tools/test.py --amp`` for segmentors: mmengine's ``TestLoop(fp16=True)`` runs the test step
    under its ``autocast`` (bf16 on CPU, fp16 on CUDA, as :mod:`densedet.apis.precision`); returns
    whether the loop now autocasts. Detectors (``default_scope='mmdet'``) keep a float32 loop
    (``False``): their heads decode boxes, so the caller runs only backbone + neck in low precision
    with :func:`~densedet.apis.precision.inference_autocast` (it autocasts inside the loop's region,
    which would switch an outer autocast off)."""
    if cfg.get('default_scope') == 'mmdet':
        return False
    cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    return True


def is_volume_model(model_cfg: dict) -> bool:
    """Whether a config's ``model`` is one of densedet's volume segmentors (or a subclass)."""
    from densedet.models.segmentors import BaseVolumeSegmentor
    from densedet.registry import MODELS
    model_type = model_cfg.get('type')
    cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type
    return isinstance(cls, type) and issubclass(cls, BaseVolumeSegmentor)


def enable_flip_tta(model_cfg: dict) -> None:
    """Mirror TTA for a volume segmentor: the config's ``flip_axes`` / ``mirror_axes``, else all
    three axes and the in-plane pair."""
    test_cfg = model_cfg.setdefault('test_cfg', {})
    if not test_cfg.get('flip_axes') and not test_cfg.get('mirror_axes'):
        test_cfg['flip_axes'] = [[2], [3], [4], [3, 4]]


def apply_speed_settings(model_cfg: dict, tta: bool = False, mirror_axes: Optional[Sequence[int]] = None,
                         overlap: Optional[float] = None) -> None:
    """The prediction speed settings of a volume segmentor's ``test_cfg``: ``mirror_axes`` (spatial
    axes 0-2 = D, H, W mirrored in every combination, nnU-Net's TTA; ``[]``: no mirroring; None:
    ``tta`` decides), ``overlap`` of neighbouring windows (None: the config's)."""
    test_cfg = model_cfg.setdefault('test_cfg', {})
    if mirror_axes is not None:
        test_cfg.pop('flip_axes', None)
        test_cfg['mirror_axes'] = list(mirror_axes)
        mirror_flip_axes(mirror_axes)  # checked here, not at the first window
    elif tta:
        enable_flip_tta(model_cfg)
    if overlap is not None:
        if not 0 <= overlap < 1:
            raise BadInputError(f'overlap must be in [0, 1), got {overlap}')
        test_cfg['overlap'] = overlap


def setup_test_outputs(cfg: Config, out: Optional[str] = None, show: bool = False,
                       show_dir: Optional[str] = None, wait_time: float = 2, tta: bool = False) -> None:
    scope = cfg.get('default_scope', 'mmseg')
    if show or show_dir:
        hooks = cfg.get('default_hooks', {})
        if 'visualization' not in hooks:
            raise ConfigKeyError('default_hooks.visualization is missing: the config cannot draw predictions')
        vis = hooks['visualization']
        vis['draw'] = True
        if scope != 'mmdet':
            vis['interval'] = 1  # paint every test image (mmseg's hook defaults to every 50th)
        if show:
            vis['show'] = True
            vis['wait_time'] = wait_time
        if show_dir:
            if scope == 'mmdet':
                vis['test_out_dir'] = show_dir
            else:
                cfg.visualizer['save_dir'] = osp.join(cfg.work_dir, show_dir)
    evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
    if out and any(str(e.get('type', '')).endswith('VolumeMetric') for e in evaluators):
        # volumes: NIfTI predictions with each input's affine and header, next to the metrics
        cfg.test_evaluator = list(evaluators) + [dict(type='NiftiPredictionWriter', output_dir=out)]
    elif out and scope != 'mmdet':
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True
    elif out and not out.endswith(('.pkl', '.pickle')):
        # COCO results json: CocoMetric writes <out>.bbox.json / <out>.segm.json and still evaluates.
        coco = [e for e in evaluators if str(e.get('type', '')).endswith('CocoMetric')]
        if not coco:
            raise ConfigKeyError(f'--out {out}: test_evaluator has no CocoMetric to write COCO results json with '
                                 '(give a .pkl path for mmdet\'s raw results instead)')
        for evaluator in coco:
            evaluator['outfile_prefix'] = out
    if tta and is_volume_model(cfg.model):
        enable_flip_tta(cfg.model)  # volumes: mirror TTA inside the sliding window
    elif tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ConfigKeyError('--tta needs tta_model and tta_pipeline in the config')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
