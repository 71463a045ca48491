"""Cross-validation of a volume config over its ``splits.json`` (nnU-Net's 5-fold workflow).

    cv = CrossValidation(cfg, 'work_dirs/x/crossval', save_probabilities=True)
    cv.run([0, 1, 2, 3, 4])     # train each fold, predict its held-out cases
    summary = cv.summarize()    # Dice / HD95 per case, fold and class; mean ± sd

Layout of the work dir::

    config.py                    the config as run (command-line options applied)
    fold_K/                      mmengine's work dir of fold K (checkpoints, logs, last_checkpoint)
    fold_K/validation/           held-out predictions: CASE.nii.gz (labels, the input's affine),
                                 CASE.npz (probabilities, float16; opt-in), cases.json
    fold_K/fold_done.json        written last: the fold is finished (a rerun skips it)
    crossval.json                folds, checkpoints, prediction folders (read by the ensemble tool)
    summary.json / summary.csv / summary.png

A fold killed while training resumes from its ``last_checkpoint`` (mmengine's resume, exact with
densedet's RandomStateHook); one killed while predicting predicts again. Folds are independent:
on a cluster each runs as its own job (``--folds K``), and the summary reads them all from disk.
"""
import contextlib
import copy
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from densedet.errors import BadConfigError, DataNotFoundError
from densedet.evaluation import write_prediction
from densedet.evaluation.crossval import plot_dice_boxes, score_held_out, summarize, write_summary
from densedet.fileio import atomic_write, exclusive_lock, load_splits, read_nifti, write_json
from densedet.structures import evaluation_targets, probabilities
from densedet.transforms import map_labels

CROSSVAL_FILE = 'crossval.json'
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _split_datasets(cfg) -> List[dict]:
    """The dataset configs (wrappers looked through) that select their cases with ``splits_file``."""
    found = []
    for key in DATALOADERS:
        dataset = (cfg.get(key) or {}).get('dataset')
        while isinstance(dataset, dict):
            if dataset.get('splits_file'):
                found.append(dataset)
            dataset = dataset.get('dataset')
    return found


def fold_count(cfg) -> tuple:
    """``(splits_file, number of folds)`` of a config; one clear error if it has no splits."""
    datasets = _split_datasets(cfg)
    name = getattr(cfg, 'filename', None) or 'the config'
    if not datasets:
        raise BadConfigError(f'{name}: no dataset of {", ".join(DATALOADERS)} has a splits_file; cross-validation '
                             'needs the folds (tools/data/plan_volumes.py writes splits.json)')
    files = {d['splits_file'] for d in datasets}
    if len(files) > 1:
        raise BadConfigError(f'{name}: the datasets name different splits files {sorted(files)}')
    path = files.pop()
    return path, len(load_splits(path))


def fold_config(cfg: Config, fold: int) -> Config:
    """A copy of ``cfg`` whose datasets use fold ``fold`` of the splits file."""
    path, count = fold_count(cfg)
    if not 0 <= fold < count:
        raise BadConfigError(f'{path}: fold {fold} does not exist (folds 0..{count - 1})')
    out = copy.deepcopy(cfg)
    for dataset in _split_datasets(out):
        dataset['fold'] = int(fold)
    return out


def predict_held_out(model, dataset, out_dir: str, save_probabilities: bool = False,
                     log: Callable = print) -> List[dict]:
    """Predicts every case of ``dataset`` (a fold's validation part) into ``out_dir``: labels as
    NIfTI on the case's own grid, optionally the probabilities (``CASE.npz``, float16, key
    ``probabilities``, ``(K, D, H, W)``); returns and writes ``cases.json`` (what scoring needs)."""
    import torch
    model.test_cfg['keep_logits'] = save_probabilities
    cases = []
    for i in range(len(dataset)):
        with torch.no_grad():
            sample = model.test_step(pseudo_collate([dataset[i]]))[0]
        meta = sample.metainfo
        case = meta['case_id']
        write_prediction(sample.pred_seg, osp.join(out_dir, f'{case}.nii.gz'), meta, meta.get('label_values'))
        if save_probabilities:
            probs = probabilities(sample.seg_logits, meta.get('regions')).cpu().numpy().astype(np.float16)
            atomic_write(osp.join(out_dir, f'{case}.npz'), lambda f: np.savez_compressed(f, probabilities=probs))
        cases.append(dict(case_id=case, seg_path=meta.get('seg_path'), label_values=meta.get('label_values'),
                          ignore_value=meta.get('ignore_value'), classes=list(meta.get('classes') or []),
                          regions=meta.get('regions')))
        log(f'[{i + 1}/{len(dataset)}] {case} -> {out_dir}')
    write_json(cases, osp.join(out_dir, 'cases.json'))
    return cases


def read_cases(pred_dir: str) -> List[dict]:
    path = osp.join(pred_dir, 'cases.json')
    if not osp.isfile(path):
        raise DataNotFoundError(f'{path} does not exist: the fold has not been predicted (tools/crossval.py)')
    return _read_json(path)


def read_label(case: dict, path: str, what: str) -> tuple:
    """A label or prediction file as class indices (ignored voxels 255) and its spacing."""
    volume = read_nifti(path, dtype=None, what=f'case {case["case_id"]!r} {what}')
    return map_labels(case['case_id'], volume, case['label_values'], case.get('ignore_value')), volume.spacing


def score_fold(pred_dir: str, fold: int, with_hd95: bool = True, predictions: Optional[Dict] = None) -> List[dict]:
    """Scores a fold's held-out cases against their label files: the NIfTI predictions in
    ``pred_dir``, or ``predictions`` (case id -> class indices, e.g. an ensemble's)."""
    scores = []
    for case in read_cases(pred_dir):
        label, spacing = read_label(case, case['seg_path'], 'label')
        if predictions is not None:
            pred = predictions[case['case_id']]
        else:
            pred, _ = read_label(case, osp.join(pred_dir, f'{case["case_id"]}.nii.gz'), 'prediction')
        targets = evaluation_targets(case['classes'], case.get('regions'))
        scores.append(score_held_out(case['case_id'], fold, pred, label, targets, spacing, with_hd95))
    return scores


class CrossValidation:
    """Trains the folds of a prepared config (``densedet.apis.config.prepare_config``) under
    ``work_dir`` and summarises their held-out predictions (module docstring: the layout)."""

    def __init__(self, cfg: Config, work_dir: str, save_probabilities: bool = False, tta: bool = False,
                 hd95: bool = True, name: Optional[str] = None, log: Callable = print):
        self.cfg, self.work_dir = cfg, work_dir
        self.name = name or osp.splitext(osp.basename(cfg.filename or 'config'))[0]
        self.splits_file, self.num_folds = fold_count(cfg)
        self.save_probabilities, self.tta, self.hd95, self.log = save_probabilities, tta, hd95, log
        self.config_path = osp.join(work_dir, 'config.py')

    def fold_dir(self, fold: int) -> str:
        return osp.join(self.work_dir, f'fold_{fold}')

    def done_file(self, fold: int) -> str:
        return osp.join(self.fold_dir(fold), 'fold_done.json')

    def run(self, folds: Optional[Sequence[int]] = None) -> None:
        from mmengine.dist import is_main_process
        folds = list(range(self.num_folds)) if folds is None else [int(k) for k in folds]
        for fold in folds:  # every fold checked before any trains
            fold_config(self.cfg, fold)
        if is_main_process():  # the config as run (what the recipe and --summarize-only read)
            os.makedirs(self.work_dir, exist_ok=True)
            self.cfg.dump(self.config_path)
        for fold in folds:
            self.run_fold(fold)

    def run_fold(self, fold: int) -> dict:
        from mmengine.dist import is_main_process
        done = self.done_file(fold)
        if osp.isfile(done):
            self.log(f'fold {fold}: finished before ({done}), skipped')
            return _read_json(done)
        # one process per fold: a second run of it (another job, a second benchmark) stops here
        lock = (exclusive_lock(self.fold_dir(fold), f'fold {fold} of {self.work_dir}') if is_main_process() else
                contextlib.nullcontext())
        with lock:
            if osp.isfile(done):  # finished by the run that held the lock
                return _read_json(done)
            return self._train_and_predict(fold)

    def _train_and_predict(self, fold: int) -> dict:
        from mmengine.dist import barrier, is_main_process
        from mmengine.runner import Runner

        from densedet.apis.config import enable_exact_resume
        from densedet.apis.volume_inference import init_volume_model
        from densedet.registry import DATASETS
        cfg = fold_config(self.cfg, fold)
        done = self.done_file(fold)
        cfg.work_dir = self.fold_dir(fold)
        pointer = osp.join(cfg.work_dir, 'last_checkpoint')
        cfg.resume = osp.isfile(pointer)
        cfg.load_from = None if cfg.resume else cfg.get('load_from')
        self.log(f'fold {fold}: ' + ('resuming training from ' + open(pointer).read().strip() if cfg.resume
                                     else 'training') + f' in {cfg.work_dir}')
        enable_exact_resume(cfg)
        runner = Runner.from_cfg(cfg)
        runner.train()
        del runner
        checkpoint = open(pointer).read().strip()
        record = dict(fold=fold, checkpoint=osp.abspath(checkpoint),
                      validation=osp.abspath(osp.join(cfg.work_dir, 'validation')),
                      probabilities=self.save_probabilities, tta=self.tta)
        if is_main_process():
            device = 'cuda' if _cuda() else 'cpu'
            model = init_volume_model(cfg, checkpoint, device=device, tta=self.tta)
            dataset = DATASETS.build(cfg.val_dataloader.dataset)
            self.log(f'fold {fold}: predicting {len(dataset)} held-out case(s) with {checkpoint}')
            record['cases'] = [c['case_id'] for c in predict_held_out(model, dataset, record['validation'],
                                                                       self.save_probabilities, self.log)]
            write_json(record, done)
        barrier()
        return record

    def finished_folds(self) -> Dict[int, dict]:
        return {k: _read_json(self.done_file(k)) for k in range(self.num_folds) if osp.isfile(self.done_file(k))}

    def summarize(self, require_all: bool = True) -> dict:
        """Scores every finished fold's held-out predictions; writes ``summary.{json,csv,png}`` and
        ``crossval.json``. ``require_all``: every fold of the splits must be finished."""
        folds = self.finished_folds()
        missing = [k for k in range(self.num_folds) if k not in folds]
        if require_all and missing:
            raise DataNotFoundError(f'{self.work_dir}: folds {missing} are not finished (no fold_done.json); run '
                                    f'tools/crossval.py with --folds {" ".join(map(str, missing))}')
        if not folds:
            raise DataNotFoundError(f'{self.work_dir}: no finished fold to summarise')
        cases = [score for k, record in sorted(folds.items())
                 for score in score_fold(record['validation'], k, self.hd95)]
        names = list(cases[0]['dice'])
        summary = summarize(cases, names)
        summary.update(config=self.config_path, splits_file=self.splits_file, folds_run=sorted(folds))
        write_summary(summary, self.work_dir)
        plot_dice_boxes({self.name: summary}, osp.join(self.work_dir, 'summary.png'), title='held-out Dice per class')
        write_json(dict(config=osp.abspath(self.config_path), splits_file=osp.abspath(self.splits_file),
                        num_folds=self.num_folds, folds={str(k): r for k, r in sorted(folds.items())},
                        summary=osp.abspath(osp.join(self.work_dir, 'summary.json'))),
                   osp.join(self.work_dir, CROSSVAL_FILE))
        return summary


def _read_json(path: str) -> dict:
    import json
    with open(path) as f:
        return json.load(f)


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()
