"""Configuration choice and ensembles over cross-validated configs (nnU-Net's
``find_best_configuration`` + ``predict`` with an ensemble), and the inference recipe.

    choice = choose_configuration(['work_dirs/a/crossval', 'work_dirs/b/crossval'])
    recipe = write_recipe(choice, 'recipe.json')
    predict_with_recipe(load_recipe('recipe.json'), ['case.nii.gz'], 'out/')

Each configuration is scored on its held-out predictions (every case once, predicted by the fold
that did not train on it), each pair as an ensemble (the two configurations' held-out
probabilities averaged, then labels), all by the mean foreground Dice (the mean over classes of the
per-class mean over cases, nnU-Net's ``foreground_mean``). The best one gets largest-component
post-processing decided on its held-out predictions. The recipe names its configs, every fold's
checkpoint, the post-processing and the TTA; predicting with it averages the probabilities of all
folds of a member, then of the members (nnU-Net's order), paints labels and post-processes.
"""
import itertools
import json
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from densedet.errors import BadDataError, BadInputError, DataKeyError, DataNotFoundError
from densedet.evaluation import decide_largest_component, keep_largest_component, write_prediction
from densedet.evaluation.crossval import nan_from_none, nan_to_none, summarize
from densedet.fileio import write_json
from densedet.structures import labels_from_probabilities, probabilities

from .crossval import CROSSVAL_FILE, read_cases, read_label, score_fold

RECIPE_VERSION = 1


def crossval_name(work_dir: str) -> str:
    """``work_dirs/NAME/crossval`` -> ``NAME`` (else the folder's own name)."""
    path = osp.abspath(work_dir)
    return osp.basename(osp.dirname(path)) if osp.basename(path) == 'crossval' else osp.basename(path)


def load_crossval(work_dir: str) -> dict:
    path = osp.join(work_dir, CROSSVAL_FILE)
    if not osp.isfile(path):
        raise DataNotFoundError(f'{path} does not exist: run tools/crossval.py until its summary is written')
    with open(path) as f:
        cv = json.load(f)
    for key in ('config', 'folds', 'summary', 'num_folds'):
        if key not in cv:
            raise DataKeyError(f'{path}: key {key!r} is missing (not written by tools/crossval.py?)')
    if len(cv['folds']) < cv['num_folds']:
        raise BadDataError(f'{path}: {len(cv["folds"])} of {cv["num_folds"]} folds finished')
    cv['name'], cv['work_dir'] = crossval_name(work_dir), work_dir
    return cv


def _fold_cases(cv: dict) -> Dict[str, tuple]:
    """case id -> (fold, validation dir, case record) of a cross-validation."""
    out = {}
    for fold, record in cv['folds'].items():
        for case in read_cases(record['validation']):
            out[case['case_id']] = (int(fold), record['validation'], case)
    return out


def _probabilities(cv: dict, validation: str, case_id: str) -> np.ndarray:
    path = osp.join(validation, f'{case_id}.npz')
    if not osp.isfile(path):
        raise DataNotFoundError(f'{path} does not exist: ensembles need the held-out probabilities '
                                f'(tools/crossval.py --save-probabilities) of {cv["name"]}')
    with np.load(path) as stored:
        return stored['probabilities'].astype(np.float32)


def _foreground_mean(summary: dict) -> float:
    values = [v['mean'] for v in summary['over_cases']['dice'].values() if not np.isnan(v['mean'])]
    return float(np.mean(values)) if values else float('nan')


def choose_configuration(work_dirs: Sequence[str], with_hd95: bool = False, ensembles: bool = True,
                         log: Callable = print) -> dict:
    """Scores every configuration and (``ensembles``) every pair; the best by mean foreground
    Dice gets its largest-component post-processing decided. Returns the choice (the recipe's
    content and the table of scores)."""
    cvs = [load_crossval(d) for d in work_dirs]
    names = [cv['name'] for cv in cvs]
    if len(set(names)) != len(names):
        raise BadDataError(f'two cross-validations have the same name {names}: give them distinct work dirs')
    cases = [_fold_cases(cv) for cv in cvs]
    for cv, held in zip(cvs[1:], cases[1:]):
        if set(held) != set(cases[0]):
            raise BadDataError(f'{cv["work_dir"]} and {cvs[0]["work_dir"]} held out different cases: compare '
                               'configurations on the same splits.json')
    candidates = []
    for cv, held in zip(cvs, cases):
        scores = [s for fold, record in sorted(cv['folds'].items())
                  for s in score_fold(record['validation'], int(fold), with_hd95)]
        summary = summarize(scores, list(scores[0]['dice']))
        candidates.append(dict(name=cv['name'], members=[cv], summary=summary, predictions=None))
    if ensembles:
        for i, j in itertools.combinations(range(len(cvs)), 2):
            predictions = {}
            for case_id, (fold, validation, case) in cases[i].items():
                mean = (_probabilities(cvs[i], validation, case_id)
                        + _probabilities(cvs[j], cases[j][case_id][1], case_id)) / 2
                predictions[case_id] = labels_from_probabilities(torch.from_numpy(mean), case.get('regions')).numpy()
            scores = []
            for fold, record in sorted(cvs[i]['folds'].items()):
                scores += score_fold(record['validation'], int(fold), with_hd95, predictions=predictions)
            summary = summarize(scores, list(scores[0]['dice']))
            candidates.append(dict(name=f'ensemble({names[i]} + {names[j]})', members=[cvs[i], cvs[j]],
                                   summary=summary, predictions=predictions))
    for c in candidates:
        c['mean_fg_dice'] = _foreground_mean(c['summary'])
        log(f'{c["name"]}: mean foreground Dice {100 * c["mean_fg_dice"]:.2f} ('
            + ', '.join(f'{n} {100 * v["mean"]:.2f}' for n, v in c['summary']['over_cases']['dice'].items()) + ')')
    best = max(candidates, key=lambda c: -1 if np.isnan(c['mean_fg_dice']) else c['mean_fg_dice'])
    decision = _decide_postprocessing(best, cases[0])
    log(f'chosen: {best["name"]} (mean foreground Dice {100 * best["mean_fg_dice"]:.2f}); largest component for '
        f'classes {decision["largest_component"] or "none"}')
    return dict(chosen=best['name'], members=[_member(cv) for cv in best['members']],
                postprocessing=decision, candidates=[_candidate(c) for c in candidates])


def _decide_postprocessing(best: dict, held: Dict[str, tuple]) -> dict:
    preds, gts = [], []
    num_classes = None
    own = _fold_cases(best['members'][0]) if best['predictions'] is None else None  # read once, not per case
    for case_id, (fold, validation, case) in sorted(held.items()):
        label, _ = read_label(case, case['seg_path'], 'label')
        if best['predictions'] is not None:
            pred = best['predictions'][case_id]
        else:
            pred, _ = read_label(case, osp.join(own[case_id][1], f'{case_id}.nii.gz'), 'prediction')
        valid = label != 255
        preds.append(np.where(valid, pred, 0))
        gts.append(np.where(valid, label, 0))
        num_classes = len(case['classes'])
    decision = decide_largest_component(preds, gts, num_classes)
    return dict(largest_component=decision['largest_component'], dice=decision['dice'])


def _member(cv: dict) -> dict:
    folds = sorted(cv['folds'], key=int)
    return dict(name=cv['name'], config=cv['config'], folds=[int(k) for k in folds],
                checkpoints=[cv['folds'][k]['checkpoint'] for k in folds])


def _candidate(c: dict) -> dict:
    over = c['summary']['over_cases']['dice']
    folds = c['summary']['over_folds']['mean_fg_dice']
    return dict(name=c['name'], mean_fg_dice=c['mean_fg_dice'], dice={n: v['mean'] for n, v in over.items()},
                fold_mean_fg_dice=folds)


def write_recipe(choice: dict, path: str, tta: bool = True) -> dict:
    """The inference recipe: ``members`` (config + every fold's checkpoint), ``postprocessing``,
    ``tta``, and the scores the choice was made on."""
    recipe = dict(version=RECIPE_VERSION, chosen=choice['chosen'], members=choice['members'], tta=tta,
                  postprocessing=dict(largest_component=choice['postprocessing']['largest_component']),
                  postprocessing_dice=choice['postprocessing']['dice'], candidates=choice['candidates'])
    write_json(nan_to_none(recipe), path)
    return recipe


def load_recipe(path: str) -> dict:
    """A recipe, checked: every config and checkpoint it names exists."""
    if not osp.isfile(path):
        raise DataNotFoundError(f'recipe not found: {path}')
    try:
        with open(path) as f:
            recipe = json.load(f)
    except json.JSONDecodeError as e:
        raise BadDataError(f'{path} is not valid JSON: {e}') from e
    for key in ('members', 'postprocessing'):
        if key not in recipe:
            raise DataKeyError(f'{path}: key {key!r} is missing (not written by tools/find_best_configuration.py?)')
    for i, member in enumerate(recipe['members']):
        for key in ('config', 'checkpoints'):
            if key not in member:
                raise DataKeyError(f'{path}: members[{i}] has no {key!r}')
        if not osp.isfile(member['config']):
            raise DataNotFoundError(f'{path}: members[{i}].config {member["config"]} does not exist')
        for k, ckpt in enumerate(member['checkpoints']):
            if not osp.isfile(ckpt):
                raise DataNotFoundError(f'{path}: members[{i}].checkpoints[{k}] {ckpt} does not exist')
    return nan_from_none(recipe)


class RecipePredictor:
    """The recipe's models (every fold of every member, or the ``folds`` given), loaded once.

    ``mirror_axes`` / ``overlap``: the speed settings
    (:func:`~densedet.apis.config.apply_speed_settings`), overriding the recipe's own (``tta``,
    ``mirror_axes``, ``overlap``)."""

    def __init__(self, recipe: dict, device: str = 'cpu', amp: bool = False, folds: Optional[Sequence[int]] = None,
                 mirror_axes: Optional[Sequence[int]] = None, overlap: Optional[float] = None):
        from .volume_inference import init_volume_model
        self.recipe, self.amp = recipe, amp
        mirror_axes = recipe.get('mirror_axes') if mirror_axes is None else mirror_axes
        overlap = recipe.get('overlap') if overlap is None else overlap
        self.members = []
        for member in recipe['members']:
            models = [init_volume_model(member['config'], ckpt, device=device, tta=bool(recipe.get('tta', True)),
                                        mirror_axes=mirror_axes, overlap=overlap)
                      for ckpt in recipe_checkpoints(member, folds)]
            for model in models:
                model.test_cfg['keep_logits'] = True
            self.members.append(models)

    def probabilities(self, path) -> tuple:
        """``(mean probabilities (K, D, H, W), the last sample)`` of one case: the mean over a
        member's folds, then over the members."""
        from .volume_inference import inference_volume
        total, sample = None, None
        for models in self.members:
            member = None
            for model in models:
                sample = inference_volume(model, path, amp=self.amp)
                probs = probabilities(sample.seg_logits, sample.metainfo.get('regions'))
                member = probs if member is None else member.add_(probs)
            member /= len(models)
            total = member if total is None else total.add_(member)
        return total / len(self.members), sample

    def __call__(self, path, out_path: Optional[str] = None):
        """Labels of one case (post-processed), written as NIfTI when ``out_path`` is given."""
        probs, sample = self.probabilities(path)
        labels = labels_from_probabilities(probs, sample.metainfo.get('regions'))
        largest = self.recipe['postprocessing'].get('largest_component') or []
        if largest:
            labels = keep_largest_component(labels, largest)
        if out_path is not None:
            meta = self.members[0][0].dataset_meta or {}
            write_prediction(labels, out_path, sample.metainfo, meta.get('label_values'))
        return labels


def recipe_checkpoints(member: dict, folds: Optional[Sequence[int]] = None) -> List[str]:
    """A member's checkpoints, all or those of ``folds`` (recipes without ``folds``: 0, 1, ...)."""
    known = member.get('folds', list(range(len(member['checkpoints']))))
    if folds is None:
        return list(member['checkpoints'])
    missing = [k for k in folds if k not in known]
    if missing:
        raise BadInputError(f"the recipe's member {member.get('name', member['config'])} has folds {known}, "
                            f'not {missing}')
    return [member['checkpoints'][known.index(k)] for k in folds]


def predict_with_recipe(recipe: dict, inputs: Sequence, out_dir: str, device: str = 'cpu', amp: bool = False,
                        log: Callable = print, **settings) -> List[str]:
    """Predicts ``inputs`` (files, folders, case lists: :func:`~densedet.apis.volume_inference.find_cases`)
    with the recipe into ``out_dir``; ``settings``: :class:`RecipePredictor`'s ``folds`` /
    ``mirror_axes`` / ``overlap`` and :func:`predict_cases`' ``overwrite``."""
    from .volume_inference import find_cases, predict_cases
    overwrite = settings.pop('overwrite', False)
    cases = find_cases(inputs)
    predictor = RecipePredictor(recipe, device=device, amp=amp, **settings)
    return predict_cases(predictor, cases, out_dir, overwrite=overwrite, log=log)['written']

