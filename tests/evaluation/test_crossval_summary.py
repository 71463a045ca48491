"""Cross-validation aggregation on hand-made predictions: exact numbers, NaN rules, the files."""
import csv
import json
import math

import numpy as np
import pytest

from densedet.evaluation.crossval import format_table, score_held_out, summarize, write_summary
from densedet.structures import evaluation_targets


def _case(case_id, fold, liver, tumour, hd_liver=1.0, hd_tumour=2.0):
    return dict(case_id=case_id, fold=fold, dice=dict(liver=liver, tumour=tumour),
                hd95=dict(liver=hd_liver, tumour=hd_tumour))


def test_score_held_out_counts_voxels_and_ignores_the_ignore_label():
    label = np.zeros((2, 4, 4), np.uint8)
    label[0, :2, :2] = 1  # 4 liver voxels
    label[1, 0, 0] = 2  # 1 tumour voxel
    label[1, 3, 3] = 255  # ignored: the prediction's 1 there counts for nothing
    pred = np.zeros_like(label)
    pred[0, :2, :1] = 1  # 2 of the liver voxels
    pred[0, 3, 3] = 1  # 1 false positive
    pred[1, 3, 3] = 1
    targets = evaluation_targets(['background', 'liver', 'tumour'])
    scored = score_held_out('c', 3, pred, label, targets, (1.0, 1.0, 1.0), with_hd95=False)
    assert scored['fold'] == 3 and scored['case_id'] == 'c'
    assert scored['dice']['liver'] == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))  # tp 2, fp 1, fn 2
    assert scored['dice']['tumour'] == 0.0  # label only
    assert math.isnan(scored['hd95']['liver'])
    # regions: a region is the union of its classes, on the same label maps
    regions = [dict(name='whole', labels=[1, 2], order=1), dict(name='core', labels=[2], order=2)]
    scored = score_held_out('c', 0, pred, label, evaluation_targets([], regions), (1, 1, 1), with_hd95=False)
    assert scored['dice']['whole'] == pytest.approx(2 * 2 / (2 * 2 + 1 + 3))
    assert scored['dice']['core'] == 0.0


def test_summarize_means_and_sample_sd_over_folds_and_over_cases():
    cases = [_case('a', 0, 0.8, 0.4), _case('b', 0, 0.6, float('nan')),  # b has no tumour either way
             _case('c', 1, 0.9, 0.7, hd_liver=3.0), _case('d', 1, 0.7, 0.5)]
    s = summarize(cases, ['liver', 'tumour'])
    fold0, fold1 = s['folds']
    assert fold0['dice'] == dict(liver=pytest.approx(0.7), tumour=pytest.approx(0.4))
    assert fold1['dice'] == dict(liver=pytest.approx(0.8), tumour=pytest.approx(0.6))
    assert fold0['mean_fg_dice'] == pytest.approx(0.55) and fold1['mean_fg_dice'] == pytest.approx(0.7)
    assert s['over_folds']['dice']['liver'] == dict(mean=pytest.approx(0.75), sd=pytest.approx(math.sqrt(0.005)), n=2)
    assert s['over_folds']['mean_fg_dice']['mean'] == pytest.approx(0.625)
    assert s['over_cases']['dice']['liver']['mean'] == pytest.approx(0.75)
    assert s['over_cases']['dice']['liver']['sd'] == pytest.approx(np.std([0.8, 0.6, 0.9, 0.7], ddof=1))
    assert s['over_cases']['dice']['tumour'] == dict(mean=pytest.approx(1.6 / 3),
                                                     sd=pytest.approx(np.std([0.4, 0.7, 0.5], ddof=1)), n=3)
    # a case's mean foreground Dice leaves its NaN class out: b counts with 0.6
    assert s['over_cases']['mean_fg_dice']['mean'] == pytest.approx(np.mean([0.6, 0.6, 0.8, 0.6]))
    assert s['over_folds']['hd95']['liver']['mean'] == pytest.approx(np.mean([1.0, 2.0]))
    assert 'liver' in format_table({'x': s}) and '75.00 ± 7.07' in format_table({'x': s})


def test_one_fold_has_no_sd_and_the_files_write_nan_as_empty(tmp_path):
    s = summarize([_case('a', 0, 0.5, float('nan'))], ['liver', 'tumour'])
    assert math.isnan(s['over_folds']['dice']['liver']['sd'])
    paths = write_summary(s, str(tmp_path))
    stored = json.loads(open(paths[0]).read())  # strict JSON: no NaN token
    assert stored['over_folds']['dice']['tumour']['mean'] is None
    rows = list(csv.reader(open(paths[1])))
    assert rows == [['case_id', 'fold', 'class', 'dice', 'hd95'], ['a', '0', 'liver', '0.500000', '1.000000'],
                    ['a', '0', 'tumour', '', '2.000000']]
