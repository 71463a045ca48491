"""Dice / HD95 against hand-computed cases; the empty-mask rules; the NIfTI writer."""
import math

import nibabel as nib
import numpy as np
import pytest
import torch

from densedet.evaluation import NiftiPredictionWriter, VolumeMetric, hd95


def sample(pred, label, spacing=(1.0, 1.0, 1.0), case='c', classes=('bg', 'liver', 'tumour'), **meta):
    shape = tuple(np.shape(label))
    return dict(pred_seg=torch.as_tensor(np.asarray(pred)), gt_seg=torch.as_tensor(np.asarray(label)),
                ori_shape=shape, img_shape=shape, ori_spacing=spacing, case_id=case, classes=classes, **meta)


def evaluate(metric, samples):
    metric.process(None, samples)
    return metric.compute_metrics(metric.results)


def test_dice_per_case_global_and_nan_rules():
    shape = (4, 4, 4)
    label1, pred1 = np.zeros(shape, int), np.zeros(shape, int)
    label1[0, :2, :2] = 1  # 4 liver voxels
    pred1[0, :2, :1] = 1  # 2 of them: Dice = 2*2 / (2 + 4) = 2/3
    label1[3, 3, 3] = 2  # a tumour, missed: Dice 0
    label2, pred2 = np.zeros(shape, int), np.zeros(shape, int)
    label2[1, :, :] = 1  # 16 liver voxels, found exactly: Dice 1; no tumour anywhere: NaN
    pred2[1, :, :] = 1
    res = evaluate(VolumeMetric(hd95=False), [sample(pred1, label1, case='a'), sample(pred2, label2, case='b')])
    assert res['Dice.liver'] == pytest.approx((2 / 3 + 1) / 2, abs=1e-4)
    assert res['GlobalDice.liver'] == pytest.approx(2 * 18 / (18 + 20), abs=1e-4)  # pooled TP / FP / FN
    assert res['Dice.tumour'] == 0.0  # case b's NaN is left out, case a's 0 stays
    assert res['GlobalDice.tumour'] == 0.0
    assert res['mDice'] == pytest.approx((res['Dice.liver'] + 0.0) / 2, abs=1e-4)
    only_empty = evaluate(VolumeMetric(hd95=False, classes=[2]), [sample(pred2, label2)])
    assert math.isnan(only_empty['Dice.tumour']) and math.isnan(only_empty['mDice'])


def test_hd95_in_millimetres():
    a = np.zeros((10, 10, 10), bool)
    a[2:5, 2:5, 2:5] = True
    b = np.roll(a, 1, axis=2)  # shifted by one voxel along W
    assert hd95(a, b, (1.0, 1.0, 1.0)) == pytest.approx(1.0)
    assert hd95(a, b, (3.0, 2.0, 0.5)) == pytest.approx(0.5)  # W spacing
    assert hd95(a, np.roll(a, 2, axis=0), (3.0, 2.0, 0.5)) == pytest.approx(6.0)  # 2 slices x 3 mm
    assert math.isnan(hd95(np.zeros_like(a), np.zeros_like(a), (1, 1, 1)))
    # one of the two empty: the volume diagonal in mm
    assert hd95(a, np.zeros_like(a), (3.0, 2.0, 0.5)) == pytest.approx(math.sqrt(30**2 + 20**2 + 5**2))
    res = evaluate(VolumeMetric(classes=[1]), [sample(a.astype(int), b.astype(int), spacing=(3.0, 2.0, 0.5))])
    assert res['HD95.liver'] == pytest.approx(0.5) and res['mHD95'] == pytest.approx(0.5)


def test_ignore_label_and_shape_errors():
    label = np.ones((2, 2, 2), int)
    label[0] = 255  # ignored voxels count nowhere
    pred = np.ones((2, 2, 2), int)
    pred[0] = 0
    assert evaluate(VolumeMetric(hd95=False, classes=[1]), [sample(pred, label)])['Dice.liver'] == 1.0
    with pytest.raises(ValueError, match=r"case 'c': prediction \(2, 2, 1\) and label \(2, 2, 2\)"):
        VolumeMetric().process(None, [sample(np.ones((2, 2, 1), int), label)])


def test_label_read_back_from_file_when_resampled(tmp_path):
    from densedet.fileio import write_nifti
    label = np.zeros((6, 6, 6), np.uint8)
    label[2:4, 2:4, 2:4] = 4  # dataset label value 4 = class 1
    path = str(tmp_path / 'seg.nii.gz')
    write_nifti(label, path, np.eye(4))
    s = sample(np.where(label > 0, 1, 0), np.zeros((3, 3, 3), int), seg_path=path, label_values=[0, 4])
    s['ori_shape'], s['img_shape'] = (6, 6, 6), (3, 3, 3)  # resampled: gt_seg is on another grid
    res = evaluate(VolumeMetric(hd95=False, classes=[1]), [s])
    assert res['Dice.liver'] == 1.0


def test_nifti_writer_keeps_geometry_and_label_values(tmp_path):
    affine = np.diag([-0.7, 0.7, 2.5, 1.0])
    affine[:3, 3] = (5, 6, 7)
    header = nib.Nifti1Header()
    header.set_xyzt_units('mm')
    pred = np.zeros((3, 4, 5), int)
    pred[1, 2, 3] = 2
    writer = NiftiPredictionWriter(output_dir=str(tmp_path / 'preds'))
    writer.process(None, [dict(pred_seg=torch.as_tensor(pred), case_id='liver_7', ori_affine=affine, header=header,
                               label_values=[0, 1, 4], img_paths=['x'])])
    assert writer.compute_metrics(writer.results) == {}
    img = nib.load(str(tmp_path / 'preds' / 'liver_7.nii.gz'))
    assert img.shape == (5, 4, 3)
    np.testing.assert_allclose(img.affine, affine)
    data = np.asarray(img.dataobj)
    assert data[3, 2, 1] == 4 and data.sum() == 4  # class 2 written as the dataset's value 4
