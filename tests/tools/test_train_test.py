"""tools/train.py and tools/test.py end to end on the demo config (small data, few iterations)."""
import glob
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import pytest

DEMO_CFG = 'configs/demo/upernet_rdnet_ade20k_demo.py'


def _options(data_root, max_iters, ckpt_interval, val_interval=None):
    opts = [f'train_cfg.max_iters={max_iters}', f'train_cfg.val_interval={val_interval or 10**6}',
            f'default_hooks.checkpoint.interval={ckpt_interval}', 'default_hooks.logger.interval=1',
            'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
            'test_dataloader.num_workers=0', 'param_scheduler.0.end=1', 'param_scheduler.1.begin=1']
    for split in ('train', 'val', 'test'):
        opts.append(f'{split}_dataloader.dataset.data_root={data_root}')
    return opts


def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    env.pop('LOCAL_RANK', None)
    return env


def _run(args, cwd, timeout=600):
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout + proc.stderr


def test_train_then_test_writes_metrics_overlays_and_predictions(repo_root, demo_data, tmp_path):
    work = tmp_path / 'work'
    log = _run(['tools/train.py', DEMO_CFG, '--work-dir', str(work), '--compile', 'eager', '--cfg-options',
                *_options(demo_data, max_iters=2, ckpt_interval=2, val_interval=2)], repo_root)
    assert 'mIoU' in log and 'compiled (eager): backbone' in log
    ckpt = (work / 'last_checkpoint').read_text().strip()
    assert ckpt.endswith('iter_2.pth')
    log = _run(['tools/test.py', DEMO_CFG, ckpt, '--work-dir', str(work), '--show-dir', 'overlays',
                '--out', str(tmp_path / 'preds'), '--cfg-options', *_options(demo_data, 2, 2)], repo_root)
    assert 'mIoU' in log
    assert len(glob.glob(str(work / 'overlays' / 'vis_data' / 'vis_image' / '*.png'))) == 2
    assert len(glob.glob(str(tmp_path / 'preds' / '*.png'))) == 2
    # --amp (bf16 autocast on CPU) and --compile (dynamo; the 'eager' backend: no code generation):
    # the same metric within a point
    amp_log = _run(['tools/test.py', DEMO_CFG, ckpt, '--work-dir', str(work), '--amp', '--compile', 'eager',
                    '--cfg-options', *_options(demo_data, 2, 2)], repo_root)
    assert 'compiled (eager): backbone' in amp_log
    full, low = (float(re.findall(r'mIoU: ([0-9.]+)', text)[-1]) for text in (log, amp_log))
    assert abs(full - low) <= 1.0, (full, low)


def test_kill_then_resume_continues_from_last_checkpoint(repo_root, demo_data, tmp_path):
    work = tmp_path / 'work'
    cmd = [sys.executable, 'tools/train.py', DEMO_CFG, '--work-dir', str(work), '--cfg-options',
           *_options(demo_data, max_iters=1000, ckpt_interval=2)]
    proc = subprocess.Popen(cmd, cwd=repo_root, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    try:
        while not (work / 'iter_2.pth').exists():
            assert proc.poll() is None, 'training exited before the first checkpoint'
            assert time.time() < deadline, 'no checkpoint within 300 s'
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    last = (work / 'last_checkpoint').read_text().strip()
    log = _run(['tools/train.py', DEMO_CFG, '--work-dir', str(work), '--resume', '--cfg-options',
                *_options(demo_data, max_iters=int(osp.basename(last)[5:-4]) + 2, ckpt_interval=2)], repo_root)
    start = int(osp.basename(last)[5:-4])
    assert f'resumed epoch: 0, iter: {start}' in log
    assert f'Iter(train) [{start + 1}/{start + 2}]' in log
    assert (work / f'iter_{start + 2}.pth').exists()


def test_two_process_cpu_training_with_gloo(repo_root, demo_data, tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip('CPU (gloo) path')
    work = tmp_path / 'work'
    proc = subprocess.run(['bash', 'tools/dist_train.sh', DEMO_CFG, '2', '--work-dir', str(work), '--cfg-options',
                           *_options(demo_data, max_iters=2, ckpt_interval=2)],
                          cwd=repo_root, env=dict(_env(), PYTHON=sys.executable, PORT='29533'),
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert 'Distributed training: True' in out
    assert (work / 'iter_2.pth').exists()


COCO_DEMO_CFG = 'configs/demo/mask-rcnn_rdnet_coco_demo.py'


def test_coco_train_then_test_writes_results_json_and_overlays(repo_root, coco_demo, tmp_path):
    import json
    work = tmp_path / 'work'
    ann = osp.join(coco_demo, 'annotations', 'instances_val2017.json')
    opts = ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1',
            'default_hooks.logger.interval=1', 'param_scheduler.0.end=1', 'param_scheduler.1.end=1',
            f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']
    for split in ('train', 'val', 'test'):
        opts += [f'{split}_dataloader.dataset.data_root={coco_demo}', f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False']
    log = _run(['tools/train.py', COCO_DEMO_CFG, '--work-dir', str(work), '--cfg-options', *opts], repo_root)
    assert 'coco/bbox_mAP' in log and 'coco/segm_mAP' in log
    ckpt = (work / 'last_checkpoint').read_text().strip()
    assert ckpt.endswith('epoch_1.pth')
    prefix = tmp_path / 'results' / 'coco'
    log = _run(['tools/test.py', COCO_DEMO_CFG, ckpt, '--work-dir', str(work), '--show-dir', 'overlays',
                '--out', str(prefix), '--cfg-options', *opts], repo_root)
    assert 'coco/segm_mAP' in log
    for kind in ('bbox', 'segm'):
        records = json.loads((tmp_path / 'results' / f'coco.{kind}.json').read_text())
        assert isinstance(records, list) and records  # all() of an empty list would pass
        assert all({'image_id', 'category_id', 'score'} <= set(r) for r in records)
        assert {r['category_id'] for r in records} <= {1, 3, 7}  # COCO ids, not contiguous labels
    assert len(glob.glob(str(work / '*' / 'overlays' / '*.png'))) == 4
    # tools/infer.py writes the dataset's category and image ids: its results.json scores against the
    # annotation file with pycocotools, and gives test.py's AP (all boxes kept: --score-thr 0)
    _run(['tools/infer.py', COCO_DEMO_CFG, ckpt, osp.join(coco_demo, 'val2017'), '--out-dir', str(tmp_path / 'infer'),
          '--score-thr', '0', '--cfg-options', f'test_dataloader.dataset.data_root={coco_demo}'], repo_root)
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = COCO(ann)
    written = json.loads((tmp_path / 'infer' / 'results.json').read_text())
    assert written and {r['category_id'] for r in written} <= set(gt.getCatIds()) == {1, 3, 7}
    assert {r['image_id'] for r in written} <= set(gt.getImgIds())
    evaluation = COCOeval(gt, gt.loadRes(str(tmp_path / 'infer' / 'results.json')), 'bbox')
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    test_ap = float(re.findall(r'coco/bbox_mAP: ([0-9.]+)', log)[-1])
    assert abs(evaluation.stats[0] - test_ap) <= 0.002, (evaluation.stats[0], test_ap)
    # --amp: backbone + neck in bf16, boxes decoded in float32 (bf16 boxes crashed CocoMetric)
    log = _run(['tools/test.py', COCO_DEMO_CFG, ckpt, '--work-dir', str(work), '--amp', '--cfg-options', *opts],
               repo_root)
    assert 'coco/bbox_mAP' in log and 'coco/segm_mAP' in log


def _seg_loader_options(data_root, splits=('train', 'val', 'test')):
    opts = []
    for split in splits:
        opts += [f'{split}_dataloader.dataset.data_root={data_root}', f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False']
    return opts


def test_fcdensenet_on_camvid_layout_trains_and_tests(repo_root, camvid_demo, tmp_path):
    cfg = 'configs/fcdensenet/fcdensenet56_camvid.py'
    work = tmp_path / 'work'
    opts = ['train_cfg.max_epochs=1', 'train_dataloader.batch_size=2', 'default_hooks.checkpoint.interval=1',
            'default_hooks.logger.interval=1', *_seg_loader_options(camvid_demo)]
    log = _run(['tools/train.py', cfg, '--work-dir', str(work), '--cfg-options', *opts], repo_root)
    assert 'mIoU' in log
    ckpt = (work / 'last_checkpoint').read_text().strip()
    log = _run(['tools/test.py', cfg, ckpt, '--work-dir', str(work), '--out', str(tmp_path / 'preds'),
                '--cfg-options', *opts], repo_root)
    assert 'mIoU' in log
    assert len(glob.glob(str(tmp_path / 'preds' / '*.png'))) == 2


def test_unetpp_on_drive_layout_trains_and_tests(repo_root, drive_demo, tmp_path):
    cfg = 'configs/unetpp/unetpp_drive.py'
    work = tmp_path / 'work'
    opts = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
            'default_hooks.logger.interval=1', 'train_dataloader.batch_size=2',
            'val_dataloader.dataset.pipeline.1.scale=(64,64)', 'test_dataloader.dataset.pipeline.1.scale=(64,64)',
            *_seg_loader_options(drive_demo, splits=('val', 'test')),
            f'train_dataloader.dataset.dataset.data_root={drive_demo}',  # mmseg wraps DRIVE in RepeatDataset
            'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False']
    log = _run(['tools/train.py', cfg, '--work-dir', str(work), '--cfg-options', *opts], repo_root)
    assert 'mDice' in log
    ckpt = (work / 'last_checkpoint').read_text().strip()
    log = _run(['tools/test.py', cfg, ckpt, '--work-dir', str(work), '--cfg-options', *opts], repo_root)
    assert 'mDice' in log


def test_plan_preprocess_train_test_and_postprocess_through_the_tools(repo_root, msd_demo, tmp_path,
                                                                      preprocessed_volume_config):
    """`make demo-3d`'s chain on a copy of the synthetic task: plan -> preprocess (2 workers) ->
    train on memory-mapped patches of fold 0 (a run resumed half-way ends with the same weights) ->
    test on the original files with flip TTA (NIfTI written back on the original grid) -> decide
    the largest-component post-processing (applying it: tests/models/test_volume_segmentors.py)."""
    import json
    import shutil

    import nibabel as nib
    import numpy as np
    import torch
    cfg = preprocessed_volume_config(msd_demo, tmp_path / 'pre')
    log = _run(['tools/data/plan_volumes.py', cfg], repo_root)
    assert '4 cases planned' in log and 'CT (CT) clip' in log
    log = _run(['tools/data/preprocess_volumes.py', cfg, '--workers', '2'], repo_root)
    assert 'preprocessed 4 case(s), skipped 0' in log
    assert 'nothing to do: 4 case(s) already preprocessed' in _run(['tools/data/preprocess_volumes.py', cfg],
                                                                   repo_root)
    opts = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=1',
            'default_hooks.logger.interval=1', 'train_dataloader.batch_size=2', 'train_dataloader.num_workers=1',
            'param_scheduler.0.end=1', 'param_scheduler.1.begin=1', 'randomness.deterministic=True']
    work = tmp_path / 'work'
    log = _run(['tools/train.py', cfg, '--work-dir', str(work), '--cfg-options', *opts], repo_root)
    assert 'Dice.liver' in log
    # exact resume: a run stopped after iteration 1 and resumed ends with the same weights
    (tmp_path / 'resumed').mkdir()
    shutil.copy(work / 'iter_1.pth', tmp_path / 'resumed' / 'iter_1.pth')
    (tmp_path / 'resumed' / 'last_checkpoint').write_text(str(tmp_path / 'resumed' / 'iter_1.pth'))
    _run(['tools/train.py', cfg, '--work-dir', str(tmp_path / 'resumed'), '--resume', '--cfg-options', *opts],
         repo_root)
    full, resumed = (torch.load(d / 'iter_2.pth', weights_only=False)['state_dict']
                     for d in (work, tmp_path / 'resumed'))
    assert all(torch.equal(full[k], resumed[k]) for k in full) and len(full) > 0
    (val_case, ) = json.loads((tmp_path / 'pre' / 'splits.json').read_text())[0]['val']
    ckpt = (work / 'last_checkpoint').read_text().strip()
    out = tmp_path / 'nifti'
    log = _run(['tools/test.py', cfg, ckpt, '--work-dir', str(work), '--out', str(out), '--tta', '--cfg-options',
                *opts], repo_root)
    assert 'wrote 1 NIfTI predictions' in log and 'mGlobalDice' in log
    src = nib.load(osp.join(msd_demo, 'imagesTr', f'{val_case}.nii.gz'))
    pred = nib.load(str(out / f'{val_case}.nii.gz'))
    assert pred.shape == src.shape and np.allclose(pred.affine, src.affine, atol=1e-5)
    log = _run(['tools/analysis/decide_postprocessing.py', cfg, str(out)], repo_root)
    assert 'liver: Dice' in log and 'tumour: Dice' in log
    decision = json.loads((out / 'postprocessing.json').read_text())
    assert decision['cases'] == [val_case] and set(decision['dice']) == {'1', '2'}
    # printed in percent with two decimals, as the README quotes Dice
    liver = decision['dice']['1']
    assert (f"liver: Dice {100 * liver['without']:.2f} as predicted, {100 * liver['largest_component']:.2f} with "
            'its largest component only') in log


def test_hdenseunet_stages_chain_through_last_checkpoint(repo_root, msd_demo, tmp_path):
    """The LiTS stage configs on LiTS-layout files (the synthetic cases renamed), on small crops:
    stage 2 starts from stage 1's ``last_checkpoint`` (stage 3 chains the same way; its training
    step and prediction are tested in test_configs / test_hdense_unet)."""
    import shutil
    lits = tmp_path / 'LiTS' / 'Training Batch 1'
    lits.mkdir(parents=True)
    for i in range(3):
        shutil.copy(osp.join(msd_demo, 'imagesTr', f'liver_{i}.nii.gz'), lits / f'volume-{i}.nii.gz')
        shutil.copy(osp.join(msd_demo, 'labelsTr', f'liver_{i}.nii.gz'), lits / f'segmentation-{i}.nii.gz')
    opts = ['train_cfg.max_iters=1', 'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1',
            'default_hooks.logger.interval=1', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
            "train_dataloader.dataset.cases=['volume-0','volume-1']", "val_dataloader.dataset.cases=['volume-2']",
            'train_dataloader.dataset.pipeline.2.patch_size=(4,64,64)', 'model.test_cfg.roi_size=(8,64,64)',
            'val_evaluator.hd95=False',
            *[f'{split}_dataloader.dataset.data_root={tmp_path / "LiTS"}' for split in ('train', 'val', 'test')]]
    stage2d, stage3d = tmp_path / 'hdenseunet-2d', tmp_path / 'hdenseunet-3d'
    _run(['tools/train.py', 'configs/hdenseunet/hdenseunet-2d_lits.py', '--work-dir', str(stage2d),
          '--cfg-options', *opts], repo_root)
    log = _run(['tools/train.py', 'configs/hdenseunet/hdenseunet-3d_lits.py', '--work-dir', str(stage3d),
                '--cfg-options', f'load_from={stage2d / "last_checkpoint"}', *opts], repo_root)
    assert f'Load checkpoint from {stage2d / "iter_1.pth"}' in log
    assert 'hff.loss_ce' in log and '2d.loss_ce' not in log and 'Dice.tumor' in log
