"""Exact resume (RandomStateHook): a run resumed from a checkpoint ends bit-identical to the
uninterrupted run (weights, buffers, optimizer state) on the ADE (iteration loop, a persistent
data worker) and COCO (epoch loop, two workers) demos; the volume demo is checked through the
tools in tests/tools/test_train_test.py."""
import os
import shutil
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.runner import Runner

from densedet.apis.config import enable_exact_resume, prepare_config
from densedet.engine.hooks import RandomStateHook, get_random_state, set_random_state


@pytest.fixture(autouse=True)
def _restore_determinism():
    yield
    torch.use_deterministic_algorithms(False)  # randomness.deterministic=True sets it process-wide


def _train(config, work_dir, options, resume=False, hook=True):
    cfg = prepare_config(Config.fromfile(config), config, work_dir=str(work_dir), cfg_options=options, resume=resume)
    enable_exact_resume(cfg)
    if not hook:
        cfg.custom_hooks = [h for h in cfg.custom_hooks if h['type'] != 'RandomStateHook']
    cfg.experiment_name = f'{os.path.basename(str(work_dir))}_{resume}_{hook}'
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
    finally:  # the runner's logger and visualizer are process-wide singletons tied to this work dir
        MMLogger._instance_dict.pop(runner.logger.instance_name, None)
        type(runner.visualizer)._instance_dict.pop(runner.visualizer.instance_name, None)


def _resume_copy(src_dir, checkpoint, dst_dir):
    """The work dir of a run killed right after writing ``checkpoint``."""
    os.makedirs(dst_dir)
    shutil.copy(os.path.join(src_dir, checkpoint), os.path.join(dst_dir, checkpoint))
    with open(os.path.join(dst_dir, 'last_checkpoint'), 'w') as f:
        f.write(os.path.join(dst_dir, checkpoint))


def _max_difference(path_a, path_b):
    a, b = torch.load(path_a, weights_only=False), torch.load(path_b, weights_only=False)
    tensors_a = [a['state_dict'][k] for k in sorted(a['state_dict'])]
    tensors_b = [b['state_dict'][k] for k in sorted(b['state_dict'])]
    for state_a, state_b in zip(a['optimizer']['state'].values(), b['optimizer']['state'].values()):
        tensors_a += [v for v in state_a.values() if torch.is_tensor(v)]
        tensors_b += [v for v in state_b.values() if torch.is_tensor(v)]
    assert len(tensors_a) == len(tensors_b) > 0
    return max((x.double() - y.double()).abs().max().item() for x, y in zip(tensors_a, tensors_b))


def _ade_options(data_root):
    opts = {'train_cfg.max_iters': 4, 'train_cfg.val_interval': 2, 'default_hooks.checkpoint.interval': 2,
            'default_hooks.logger.interval': 1, 'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 1,
            'train_dataloader.persistent_workers': True, 'val_dataloader.num_workers': 0,
            'val_dataloader.persistent_workers': False, 'param_scheduler.0.end': 1, 'param_scheduler.1.begin': 1,
            'randomness.seed': 0, 'randomness.deterministic': True}
    for split in ('train', 'val', 'test'):
        opts[f'{split}_dataloader.dataset.data_root'] = data_root
    return opts


def test_iteration_loop_resume_is_bit_identical(repo_root, demo_data, tmp_path):
    """4 iterations (validation after 2) vs 2 + resume + 2; and the check can fail: without the
    hook (mmengine alone re-seeds at resume) the drop-path masks differ."""
    config = os.path.join(repo_root, 'configs/demo/upernet_rdnet_ade20k_demo.py')
    _train(config, tmp_path / 'full', _ade_options(demo_data))
    _resume_copy(tmp_path / 'full', 'iter_2.pth', tmp_path / 'resumed')
    _train(config, tmp_path / 'resumed', _ade_options(demo_data), resume=True)
    assert _max_difference(tmp_path / 'full' / 'iter_4.pth', tmp_path / 'resumed' / 'iter_4.pth') == 0
    _resume_copy(tmp_path / 'full', 'iter_2.pth', tmp_path / 'mmengine_alone')
    _train(config, tmp_path / 'mmengine_alone', _ade_options(demo_data), resume=True, hook=False)
    assert _max_difference(tmp_path / 'full' / 'iter_4.pth', tmp_path / 'mmengine_alone' / 'iter_4.pth') > 0


def test_unseeded_resume_takes_the_seed_of_the_checkpoint(tmp_path):
    """mmengine draws a seed for a config without one; the data workers are seeded with it before
    the checkpoint is read, so the config must carry the interrupted run's seed."""
    torch.save({'meta': {'seed': 1234}, 'state_dict': {}}, tmp_path / 'iter_2.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    cfg = Config(dict(work_dir=str(tmp_path), randomness=dict(seed=None, deterministic=True)))
    cfg.resume = True
    enable_exact_resume(cfg)
    assert cfg.randomness == dict(seed=1234, deterministic=True)
    assert cfg.custom_hooks == [dict(type='RandomStateHook')]
    enable_exact_resume(cfg)  # once
    assert cfg.custom_hooks == [dict(type='RandomStateHook')]
    seeded = Config(dict(work_dir=str(tmp_path), randomness=dict(seed=7), resume=True))
    enable_exact_resume(seeded)
    assert seeded.randomness.seed == 7


def test_epoch_loop_resume_is_bit_identical(repo_root, coco_demo, tmp_path):
    """The COCO demo (Mask R-CNN, two data workers per epoch): 2 epochs vs 1 + resume + 1."""
    config = os.path.join(repo_root, 'configs/demo/mask-rcnn_rdnet_coco_demo.py')
    ann = os.path.join(coco_demo, 'annotations', 'instances_val2017.json')
    # the backbone frozen: a third of the optimizer state to write and compare (the RPN / RoI samplers
    # and the workers' augmentations still draw random numbers)
    opts = {'model.backbone.frozen_stages': 4, 'train_dataloader.dataset.indices': 4,  # one batch an epoch
            'train_cfg.max_epochs': 2, 'train_cfg.val_interval': 10, 'default_hooks.checkpoint.interval': 1,
            'default_hooks.logger.interval': 1, 'param_scheduler.0.end': 1, 'param_scheduler.1.milestones': [1],
            'val_evaluator.ann_file': ann, 'test_evaluator.ann_file': ann, 'randomness.deterministic': True,
            'val_dataloader.num_workers': 0, 'val_dataloader.persistent_workers': False}
    for split in ('train', 'val', 'test'):
        opts[f'{split}_dataloader.dataset.data_root'] = coco_demo
    _train(config, tmp_path / 'full', opts)
    _resume_copy(tmp_path / 'full', 'epoch_1.pth', tmp_path / 'resumed')
    _train(config, tmp_path / 'resumed', opts, resume=True)
    assert _max_difference(tmp_path / 'full' / 'epoch_2.pth', tmp_path / 'resumed' / 'epoch_2.pth') == 0


def test_random_state_round_trip_and_validation_leaves_it_alone():
    torch.manual_seed(3)
    state = get_random_state()
    expected = torch.rand(3)
    set_random_state(state)
    assert torch.equal(torch.rand(3), expected)
    hook = RandomStateHook()
    set_random_state(state)
    hook.before_val(None)
    torch.rand(100)  # validation draws
    hook.after_val(None)
    assert torch.equal(torch.rand(3), expected)


def test_epoch_resume_warns_where_it_cannot_be_exact(monkeypatch):
    import densedet.engine.hooks as hooks_module
    messages = []
    monkeypatch.setattr(hooks_module, 'print_log', lambda msg, logger=None, level=None: messages.append(msg))
    loader = type('Loader', (list, ), dict(num_workers=2, persistent_workers=True))([0, 1, 2, 3])
    RandomStateHook._check_epoch_resume(None, SimpleNamespace(iter=5, epoch=1, dataloader=loader))
    assert len(messages) == 2
    assert 'inside epoch 2' in messages[0] and 'persistent_workers=True' in messages[1]
    messages.clear()
    loader.persistent_workers = False
    RandomStateHook._check_epoch_resume(None, SimpleNamespace(iter=4, epoch=1, dataloader=loader))
    assert messages == []
