"""nnU-Net v2's two label kinds: an ignore label (sparse annotation: out of losses and metrics) and
overlapping regions (one sigmoid output each, painted back in regions_class_order, region Dice),
declared in an nnU-Net dataset.json or in the config; bad declarations are one error each."""
import json
import os

import nibabel as nib
import numpy as np
import pytest
import torch
from mmengine.dataset import Compose

from densedet.datasets import MSDDataset, NnUNetDataset
from densedet.errors import BadConfigError, DataKeyError
from densedet.evaluation import VolumeMetric
from densedet.registry import MMSEG_MODELS, MODELS
from densedet.structures import IGNORE_INDEX, VolumeDataSample, labels_from_probabilities, region_masks

LOAD = [dict(type='LoadVolumeFromFile'), dict(type='PackVolumeInputs')]
BRATS_LABELS = {'background': 0, 'whole tumor': [1, 2, 3], 'tumor core': [2, 3], 'enhancing tumor': 3, 'ignore': 4}


def save(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data), np.eye(4)), str(path))


@pytest.fixture
def brats_like(tmp_path):
    root = tmp_path / 'Dataset001_BrainTumour'
    label = np.zeros((6, 6, 6), np.uint8)
    label[1:5, 1:5, 1:5] = 1
    label[2:4, 2:4, 2:4] = 2
    label[2, 2, 2] = 3
    label[0] = 4  # unannotated slab
    save(root / 'imagesTr' / 'b_001_0000.nii.gz', np.random.RandomState(0).rand(6, 6, 6).astype(np.float32))
    save(root / 'labelsTr' / 'b_001.nii.gz', label)
    desc = {'channel_names': {'0': 'FLAIR'}, 'labels': BRATS_LABELS, 'regions_class_order': [1, 2, 3],
            'numTraining': 1, 'file_ending': '.nii.gz'}
    (root / 'dataset.json').write_text(json.dumps(desc))
    return root, label


def test_nnunet_regions_and_ignore_label_are_read_from_dataset_json(brats_like):
    root, label = brats_like
    ds = NnUNetDataset(data_root=str(root), pipeline=LOAD)
    assert ds.metainfo['classes'] == ('background', 'label_1', 'label_2', 'enhancing tumor')
    assert ds.metainfo['label_values'] == [0, 1, 2, 3] and ds.metainfo['ignore_value'] == 4
    assert ds.metainfo['regions'] == [dict(name='whole tumor', labels=[1, 2, 3], order=1),
                                      dict(name='tumor core', labels=[2, 3], order=2),
                                      dict(name='enhancing tumor', labels=[3], order=3)]
    sample = ds[0]['data_samples']
    gt = sample.gt_seg.numpy()
    assert (gt[:, :, 0] == IGNORE_INDEX).all()  # label value 4 (file axis i = D index in reverse order)
    assert sample.metainfo['regions'] == ds.metainfo['regions'] and sample.metainfo['ignore_value'] == 4


def test_config_regions_for_an_msd_task_and_bad_declarations(msd_demo, brats_like):
    ds = MSDDataset(data_root=msd_demo, regions={'liver and tumour': [1, 2], 'tumour': [2]}, ignore_label=9)
    assert ds.metainfo['regions'] == [dict(name='liver and tumour', labels=[1, 2], order=2),
                                      dict(name='tumour', labels=[2], order=2)]
    with pytest.raises(DataKeyError) as error:
        MSDDataset(data_root=msd_demo, regions={'tumour': [2, 5]})
    assert str(error.value).strip('"') == (f"MSDDataset: regions['tumour'] names label values [5], not foreground "
                                           f'labels of {msd_demo}/dataset.json (labels [0, 1, 2])')
    with pytest.raises(BadConfigError) as error:
        MSDDataset(data_root=msd_demo, ignore_label=2)
    assert str(error.value) == (f"MSDDataset: the ignore label 2 collides with class 'tumour' of "
                                f'{msd_demo}/dataset.json (labels [0, 1, 2])')
    with pytest.raises(DataKeyError, match=r'regions_class_order \[1\] needs one label value'):
        MSDDataset(data_root=msd_demo, regions={'a': [1], 'b': [2]}, regions_class_order=[1])
    root, _ = brats_like
    desc = json.loads((root / 'dataset.json').read_text())
    desc['labels']['ignore'] = 3
    (root / 'dataset.json').write_text(json.dumps(desc))
    with pytest.raises(BadConfigError, match="the ignore label 3 collides with class 'enhancing tumor'"):
        NnUNetDataset(data_root=str(root))


REGIONS = [dict(name='whole', labels=[1, 2], order=1), dict(name='core', labels=[2], order=2)]


@pytest.mark.parametrize('regions', [False, True])
def test_ignored_voxels_get_no_loss_gradient(regions):
    target = torch.randint(0, 3, (2, 4, 5, 6))
    target[:, 1] = IGNORE_INDEX
    channels = 2 if regions else 3
    if regions:
        losses = [dict(type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True), dict(type='SoftDiceLoss')]
        target = region_masks(target, REGIONS)
        assert target.shape == (2, 2, 4, 5, 6) and (target[:, :, 1] == IGNORE_INDEX).all()
    else:
        losses = [dict(type='CrossEntropyLoss', avg_non_ignore=True), dict(type='SoftDiceLoss')]
    for cfg in losses:
        logits = torch.randn(2, channels, 4, 5, 6, requires_grad=True)
        MMSEG_MODELS.build(cfg)(logits, target, ignore_index=IGNORE_INDEX).backward()
        assert logits.grad[:, :, 1].abs().max() == 0, cfg
        assert logits.grad[:, :, 0].abs().max() > 0, cfg


def _tiny_segmentor(num_outputs, losses=None):
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')  # another test may have left mmdet's
    model = dict(type='VolumeEncoderDecoder',
                 backbone=dict(type='UNetEncoder', in_channels=1, channels=(4, 8), spatial_dims=3),
                 decode_head=dict(type='UNetPlusPlusHead', in_channels=(4, 8), num_classes=num_outputs,
                                  spatial_dims=3),
                 test_cfg=dict(roi_size=(8, 8, 8)))
    if losses:
        model['losses'] = losses
    return MODELS.build(model)


def test_region_training_and_prediction_through_the_segmentor():
    sigmoid = [dict(type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True), dict(type='SoftDiceLoss')]
    model = _tiny_segmentor(2, sigmoid)
    sample = VolumeDataSample(metainfo=dict(regions=REGIONS, img_shape=(8, 8, 8)))
    sample.gt_seg = torch.randint(0, 3, (8, 8, 8))
    losses = model.loss(torch.randn(1, 1, 8, 8, 8), [sample])
    assert set(losses) == {'loss_ce', 'loss_dice'} and all(torch.isfinite(v) for v in losses.values())
    with pytest.raises(BadConfigError, match='declares 2 regions \\(whole, core\\) but the model has 3 outputs'):
        _tiny_segmentor(3, sigmoid).loss(torch.randn(1, 1, 8, 8, 8), [sample])
    with pytest.raises(BadConfigError, match='region-based training needs sigmoid losses'):
        _tiny_segmentor(2).loss(torch.randn(1, 1, 8, 8, 8), [sample])
    # prediction paints the regions above 0.5 in their order: core (2) over whole (1)
    logits = torch.full((1, 2, 8, 8, 8), -5.0)
    logits[0, 0, 2:6] = 5.0
    logits[0, 1, 3:4] = 5.0
    model.forward_logits = lambda inputs: logits  # one window: the whole input
    pred = model.predict(torch.zeros(1, 1, 8, 8, 8), [VolumeDataSample(metainfo=dict(regions=REGIONS))])[0].pred_seg
    assert (pred[2] == 1).all() and (pred[3] == 2).all() and (pred[0] == 0).all() and (pred[6] == 0).all()
    assert torch.equal(labels_from_probabilities(logits[0].sigmoid(), REGIONS), pred)


def test_region_dice_and_ignored_voxels_in_the_metric():
    label = torch.zeros(4, 4, 4, dtype=torch.long)
    label[1:3] = 1
    label[1] = 2
    label[3] = IGNORE_INDEX
    pred = label.clone()
    pred[3] = 2  # wrong everywhere the label is ignored: no effect
    pred[2, 0, 0] = 2  # one whole-tumour voxel called core
    metric = VolumeMetric(hd95=False)
    sample = dict(pred_seg=pred, gt_seg=label, img_shape=(4, 4, 4), ori_shape=(4, 4, 4), case_id='c',
                  classes=('background', 'a', 'b'), regions=REGIONS)
    metric.process(None, [sample])
    scores = metric.compute_metrics(metric.results)
    assert scores['Dice.whole'] == 1.0  # still inside "whole"
    assert scores['Dice.core'] == round(2 * 16 / (2 * 16 + 1), 4)
    metric = VolumeMetric(hd95=False)
    metric.process(None, [dict(sample, regions=None)])
    assert metric.compute_metrics(metric.results)['Dice.b'] == round(2 * 16 / 33, 4)


def test_the_ignore_label_survives_loading_and_packing(brats_like):
    root, _ = brats_like
    ds = NnUNetDataset(data_root=str(root))
    results = Compose(LOAD)(ds.get_data_info(0))
    assert (results['data_samples'].gt_seg == IGNORE_INDEX).sum() == 36


def test_preprocessed_cases_keep_the_regions_and_the_ignore_label(brats_like, tmp_path):
    from densedet.datasets import PreprocessedVolumeDataset
    from densedet.preparation import preprocess_dataset
    root, _ = brats_like
    out = tmp_path / 'pre'
    preprocess_dataset(dict(dataset=dict(type='NnUNetDataset', data_root=str(root)), out_dir=str(out),
                            pipeline=[dict(type='LoadVolumeFromFile')]), log=lambda *a: None)
    ds = PreprocessedVolumeDataset(data_root=str(out))
    raw = NnUNetDataset(data_root=str(root))
    assert ds.metainfo['regions'] == raw.metainfo['regions'] and ds.metainfo['ignore_value'] == 4
    stored = np.load(ds.get_data_info(0)['seg_path'])
    assert (stored == IGNORE_INDEX).sum() == 36 and ds.get_data_info(0)['regions'] == raw.metainfo['regions']
