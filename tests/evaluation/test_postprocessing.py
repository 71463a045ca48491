"""nnU-Net's largest-component post-processing (densedet/evaluation/postprocessing.py)."""
import json

import numpy as np
import pytest
import torch

from densedet.evaluation import decide_largest_component, keep_largest_component
from densedet.evaluation.postprocessing import largest_component_classes


def _label():
    label = np.zeros((10, 20, 20), np.uint8)
    label[2:8, 2:10, 2:10] = 1      # the liver
    label[1:3, 15:18, 15:18] = 1    # a false-positive island
    label[4:6, 4:6, 4:6] = 2        # a tumour inside
    label[4:6, 14:16, 2:4] = 2      # a second tumour, apart
    return label


def test_keep_largest_component_removes_only_the_smaller_pieces_of_the_given_classes():
    label = _label()
    out = keep_largest_component(label, [1])
    assert (out[1:3, 15:18, 15:18] == 0).all()  # the island is background now
    assert (out[2:8, 2:10, 2:10] == label[2:8, 2:10, 2:10]).all()
    assert (out == 2).sum() == (label == 2).sum()  # class 2 untouched
    both = keep_largest_component(torch.from_numpy(label), [1, 2])
    assert isinstance(both, torch.Tensor) and (both == 2).sum() == 8  # the first tumour (2x2x2) is kept
    # diagonal neighbours are one component (full connectivity)
    diagonal = np.zeros((3, 3, 3), np.uint8)
    diagonal[0, 0, 0] = diagonal[1, 1, 1] = diagonal[2, 2, 2] = 1
    assert (keep_largest_component(diagonal, [1]) == diagonal).all()


def test_decision_keeps_a_class_only_where_validation_dice_improves():
    gt = _label()
    gt[1:3, 15:18, 15:18] = 0  # the ground truth has no island, but both tumours
    pred = _label()
    decision = decide_largest_component([pred, pred], [gt, gt], num_classes=3)
    assert decision['largest_component'] == [1]
    assert decision['dice']['1']['largest_component'] == pytest.approx(1.0)
    assert decision['dice']['2']['largest_component'] < decision['dice']['2']['without'] == pytest.approx(1.0)


def test_setting_reads_a_list_or_the_decision_file(tmp_path):
    assert largest_component_classes(None) == [] and largest_component_classes((2, 1)) == [2, 1]
    path = tmp_path / 'postprocessing.json'
    path.write_text(json.dumps(dict(largest_component=[1], dice={})))
    assert largest_component_classes(str(path)) == [1]
    with pytest.raises(FileNotFoundError, match='decide_postprocessing.py writes it'):
        largest_component_classes(str(tmp_path / 'missing.json'))
