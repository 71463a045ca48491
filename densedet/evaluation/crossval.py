"""Cross-validation bookkeeping: score held-out predictions, aggregate over cases and folds, write
the summary (JSON + CSV) and the per-class box plot.

Conventions (as "nnU-Net Revisited" reports):
- a case's Dice for a class is NaN when neither prediction nor label has it (left out of every
  mean, counted in ``n``);
- a fold's value is the mean over its held-out cases; "over folds" is the mean and sample sd
  (ddof 1) of the fold values, "over cases" the mean and sample sd of the case values;
- ``mean_fg_dice``: the mean over foreground classes (or regions), per case, per fold and overall
  (the number configurations are ranked by).
"""
import csv
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from densedet.fileio import atomic_write, write_json

from .volume_metric import _nanmean as nanmean
from .volume_metric import dice_from_counts, score_case


def score_held_out(case_id: str, fold: int, pred: np.ndarray, label: np.ndarray, targets: Sequence[tuple],
                   spacing: Sequence[float], with_hd95: bool = True) -> dict:
    """One held-out case: ``dict(case_id, fold, dice={name: v}, hd95={name: v})``."""
    scored = score_case(pred, label, targets, spacing, with_hd95)
    return dict(case_id=case_id, fold=int(fold),
                dice={n: dice_from_counts(*c) for n, c in zip(scored['names'], scored['counts'])},
                hd95={n: float(h) for n, h in zip(scored['names'], scored['hd95'])})


def _nanmean(values) -> float:
    return nanmean(list(values))


def _mean_sd(values) -> dict:
    values = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    return dict(mean=float(values.mean()) if values.size else float('nan'),
                sd=float(values.std(ddof=1)) if values.size > 1 else float('nan'), n=int(values.size))


def summarize(cases: List[dict], names: Sequence[str]) -> dict:
    """Per-fold means and mean ± sd over folds and over cases of Dice and HD95 per class, and of
    the mean foreground Dice."""
    folds = sorted({c['fold'] for c in cases})
    per_fold = []
    for fold in folds:
        members = [c for c in cases if c['fold'] == fold]
        entry = dict(fold=fold, cases=len(members))
        for metric in ('dice', 'hd95'):
            entry[metric] = {n: _nanmean(c[metric][n] for c in members) for n in names}
        entry['mean_fg_dice'] = _nanmean(entry['dice'].values())
        per_fold.append(entry)
    case_fg = [_nanmean(c['dice'][n] for n in names) for c in cases]
    summary = dict(classes=list(names), folds=per_fold, cases=cases, over_folds={}, over_cases={})
    for metric in ('dice', 'hd95'):
        summary['over_folds'][metric] = {n: _mean_sd(f[metric][n] for f in per_fold) for n in names}
        summary['over_cases'][metric] = {n: _mean_sd(c[metric][n] for c in cases) for n in names}
    summary['over_folds']['mean_fg_dice'] = _mean_sd(f['mean_fg_dice'] for f in per_fold)
    summary['over_cases']['mean_fg_dice'] = _mean_sd(case_fg)
    return summary


def write_summary(summary: dict, out_dir: str, name: str = 'summary') -> List[str]:
    """``NAME.json`` (the whole summary, NaN written as null) and ``NAME.csv`` (one row per case
    and class: case_id, fold, class, dice, hd95)."""
    json_path = write_json(nan_to_none(summary), osp.join(out_dir, f'{name}.json'))

    def write_rows(f):
        writer = csv.writer(f, lineterminator='\n')
        writer.writerow(['case_id', 'fold', 'class', 'dice', 'hd95'])
        for case in summary['cases']:
            for n in summary['classes']:
                writer.writerow([case['case_id'], case['fold'], n, _fmt(case['dice'][n]), _fmt(case['hd95'][n])])

    return [json_path, atomic_write(osp.join(out_dir, f'{name}.csv'), write_rows, mode='w')]


def format_table(summaries: Dict[str, dict]) -> str:
    """Per-class Dice (mean ± sd over folds, in %) of one or more configurations, as text."""
    names = next(iter(summaries.values()))['classes']
    header = ['configuration'] + list(names) + ['mean fg']
    rows = []
    for label, s in summaries.items():
        cells = [_pm(s['over_folds']['dice'][n]) for n in names] + [_pm(s['over_folds']['mean_fg_dice'])]
        rows.append([label] + cells)
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    return '\n'.join('  '.join(str(c).ljust(w) for c, w in zip(r, widths)) for r in [header] + rows)


def plot_dice_boxes(summaries: Dict[str, dict], path: str, title: Optional[str] = None) -> str:
    """Box plot of the held-out cases' Dice per class, one box per configuration."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = next(iter(summaries.values()))['classes']
    width = 0.8 / len(summaries)
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(names) * max(1, len(summaries) / 2), 4))
    for k, (label, s) in enumerate(summaries.items()):
        data = [[c['dice'][n] for c in s['cases'] if not math.isnan(c['dice'][n])] for n in names]
        positions = [i + (k - (len(summaries) - 1) / 2) * width for i in range(len(names))]
        box = ax.boxplot(data, positions=positions, widths=width * 0.9, patch_artist=True)
        color = plt.cm.tab10(k % 10)
        for patch in box['boxes']:
            patch.set_facecolor(color)
        ax.plot([], [], color=color, linewidth=8, label=label)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel('Dice (held-out cases)')
    ax.set_ylim(0, 1.02)
    ax.legend(loc='lower left', fontsize='small')
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _pm(stat: dict) -> str:
    if math.isnan(stat['mean']):
        return 'n/a'
    return f"{100 * stat['mean']:.2f}" + ('' if math.isnan(stat['sd']) else f" ± {100 * stat['sd']:.2f}")


def _fmt(value: float) -> str:
    return '' if math.isnan(value) else f'{value:.6f}'


def nan_to_none(obj):
    """NaN -> null for JSON (json.dump would write the non-standard ``NaN``)."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [nan_to_none(v) for v in obj]
    return obj


def nan_from_none(obj):
    """The inverse of the JSON writing: null -> NaN (a summary read back)."""
    if obj is None:
        return float('nan')
    if isinstance(obj, dict):
        return {k: nan_from_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [nan_from_none(v) for v in obj]
    return obj
