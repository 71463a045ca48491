import os.path as osp

import pytest
from mmengine.config import Config

from densedet.apis import enable_amp, prepare_config, setup_test_outputs


def test_missing_data_root_names_key_and_path(repo_root):
    path = osp.join(repo_root, 'configs', 'upernet_rdnet_ade20k.py')
    cfg = Config.fromfile(path)
    with pytest.raises(FileNotFoundError, match=r"train_dataloader.dataset.data_root: directory "
                                                r"'/no/such/ade' does not exist"):
        prepare_config(cfg, path, cfg_options={'train_dataloader.dataset.data_root': '/no/such/ade'})
    path = osp.join(repo_root, 'configs', 'denseunet3d', 'denseunet3d_msd-liver_preprocessed.py')
    cfg = Config.fromfile(path)
    with pytest.raises(FileNotFoundError, match=r"'/no/such/pre' does not exist: plan and preprocess the task "
                                                r"first \(tools/data/plan_volumes.py CONFIG"):
        prepare_config(cfg, path, cfg_options={'train_dataloader.dataset.data_root': '/no/such/pre'})


def test_work_dir_defaults_to_config_name(repo_root, demo_data):
    path = osp.join(repo_root, 'configs', 'upernet_rdnet_ade20k.py')
    cfg = Config.fromfile(path)
    options = {f'{k}.dataset.data_root': demo_data for k in ('train_dataloader', 'val_dataloader')}
    options['test_dataloader.dataset.data_root'] = demo_data
    cfg = prepare_config(cfg, path, cfg_options=options)
    assert cfg.work_dir == './work_dirs/upernet_rdnet_ade20k'


def test_amp_on_cpu_selects_bfloat16_wrapper(repo_root):
    import torch
    if torch.cuda.is_available():
        pytest.skip('CPU behaviour')
    cfg = Config.fromfile(osp.join(repo_root, 'configs', 'upernet_rdnet_ade20k.py'))
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'CPUAmpOptimWrapper'
    assert cfg.optim_wrapper.constructor == 'DenseLayerDecayConstructor'


def test_tta_and_outputs(repo_root):
    cfg = Config.fromfile(osp.join(repo_root, 'configs', 'upernet_rdnet_ade20k.py'))
    cfg.work_dir = '/tmp/wd'
    setup_test_outputs(cfg, out='/tmp/preds', show_dir='vis', tta=True)
    assert cfg.model.type == 'SegTTAModel' and cfg.model.module.backbone.type == 'RDNet'
    assert cfg.test_evaluator.output_dir == '/tmp/preds'
    assert cfg.visualizer.save_dir == '/tmp/wd/vis'
    assert cfg.default_hooks.visualization.draw is True
