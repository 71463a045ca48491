"""Tools print user errors (every densedet.errors.DensedetError, mmengine's registry misses, mmcv ops
that need compiled mmcv) as one line and exit 1, the traceback behind --debug / DENSEDET_DEBUG=1;
unexpected exceptions keep their traceback (densedet/apis/cli.py run_tool). Each tool is run with
each kind of bad input the README's bad-input table lists for it."""
import os
import os.path as osp
import pickle
import subprocess
import sys

import pytest
import torch

from densedet.apis import init_model
from densedet.apis.cli import run_tool, user_error_message
from densedet.errors import BadCheckpointError, BadDataError, DataKeyError, DensedetError
from densedet.fileio import read_nifti

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SEG_CFG = 'configs/demo/upernet_rdnet_ade20k_demo.py'
VOL_CFG = 'configs/demo/denseunet3d_msd-liver_demo.py'


def _tool(repo_root, *args, env=None):
    return subprocess.run([sys.executable, *args], cwd=repo_root, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, **(env or {})))


def test_tools_print_one_line_for_bad_input_and_the_traceback_with_debug(repo_root):
    args = ['tools/train.py', SEG_CFG, '--cfg-options', 'train_dataloader.dataset.data_root=/no/such/ade']
    out = _tool(repo_root, *args)
    assert out.returncode == 1 and 'Traceback' not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        "train.py: error: train_dataloader.dataset.data_root: directory '/no/such/ade' does not exist (prepare the "
        'dataset there or override it with --cfg-options) (--debug for the traceback)')
    out = _tool(repo_root, *args, env={'DENSEDET_DEBUG': '1'})  # --debug: test below
    assert out.returncode == 1 and 'Traceback' in out.stderr and 'DataNotFoundError' in out.stderr
    out = _tool(repo_root, 'tools/data/plan_volumes.py', '--data-root', '/no/such/task')
    assert out.returncode == 1 and 'Traceback' not in out.stderr
    assert "data_root '/no/such/task' does not exist" in out.stderr


def test_run_tool_keeps_the_traceback_of_unexpected_errors(tmp_path, capsys):
    def broken(argv):
        return int('not a number')  # a ValueError, but not one densedet raised

    with pytest.raises(ValueError, match='invalid literal'):
        run_tool(broken, [])

    def bad_input(argv):
        read_nifti(str(tmp_path / 'missing.nii.gz'))

    with pytest.raises(SystemExit) as exit_info:
        run_tool(bad_input, [])
    assert exit_info.value.code == 1 and 'image file not found' in capsys.readouterr().err
    with pytest.raises(FileNotFoundError):
        run_tool(bad_input, ['--debug'])


def test_user_errors_are_densedet_errors_and_the_builtin_kind_callers_expect():
    error = DataKeyError("dataset.json: key 'labels' is missing")
    assert isinstance(error, KeyError) and isinstance(error, DensedetError)
    assert str(error) == "dataset.json: key 'labels' is missing"  # no KeyError quotes
    # mmengine's registry re-raises a build error as type(error)(message): the class survives
    wrapped = type(error)(f'class `MSDDataset` in densedet/datasets/volume.py: {error}')
    assert user_error_message(wrapped).startswith('class `MSDDataset`')
    assert user_error_message(ValueError('not ours')) is None
    # raised in a DataLoader worker: torch re-raises with the worker's traceback as the message
    worker = BadDataError('Caught BadDataError in DataLoader worker process 0.\nOriginal Traceback (most recent '
                          'call last):\n  File "x.py", line 1, in f\ndensedet.errors.BadDataError: label a.png has '
                          'values [200] outside the classes\n')
    assert user_error_message(worker) == 'label a.png has values [200] outside the classes'
    from mmcv import _ext  # densedet's stand-in without compiled mmcv, or the compiled extension
    if hasattr(_ext, '_missing'):
        with pytest.raises(NotImplementedError) as missing:
            _ext.sigmoid_focal_loss_forward()
        assert 'MMCV_OPS=compiled' in user_error_message(missing.value)


def _save(model, path, **meta):
    torch.save({'state_dict': model.state_dict(), 'meta': meta}, path)
    return str(path)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """A 2D demo checkpoint and a volume demo checkpoint (random weights, runner-style meta)."""
    out = tmp_path_factory.mktemp('ckpts')
    torch.manual_seed(0)
    seg = _save(init_model(osp.join(ROOT, SEG_CFG)), out / 'seg.pth',
                experiment_name='upernet_rdnet_ade20k_demo_20261206_101010')
    vol = _save(init_model(osp.join(ROOT, VOL_CFG)), out / 'vol.pth',
                experiment_name='denseunet3d_msd-liver_demo_20261206_101010',
                dataset_meta=dict(classes=['background', 'liver', 'cancer'], label_values=[0, 1, 2], modalities=['CT']))
    return dict(seg=seg, vol=vol)


def _data_options(root):
    return ['--cfg-options'] + [f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val', 'test')]


def test_a_checkpoint_of_another_config_is_refused_by_test_infer_and_infer_volume(user_error, checkpoints,
                                                                                  demo_data, tmp_path):
    message = user_error('tools/test.py', SEG_CFG, checkpoints['vol'], '--work-dir', tmp_path / 'work',
                         *_data_options(demo_data))
    assert message.startswith(f"{checkpoints['vol']} does not fit the model of {SEG_CFG}: ")
    assert ' missing (backbone.' in message and ' unexpected (' in message
    assert message.endswith("it was trained with config 'denseunet3d_msd-liver_demo'")
    assert not list((tmp_path / 'work').glob('*/*.json'))  # no metrics written for a random model
    message = user_error('tools/infer.py', SEG_CFG, checkpoints['vol'], demo_data, '--out-dir', tmp_path / 'out')
    assert message.startswith(f"{checkpoints['vol']} does not fit the model of {SEG_CFG}: ")
    assert not (tmp_path / 'out').exists()
    nifti = osp.join(osp.dirname(__import__('nibabel').__file__), 'tests', 'data', 'anatomical.nii')
    message = user_error('tools/infer_volume.py', VOL_CFG, checkpoints['seg'], nifti, '--out-dir', tmp_path / 'vol')
    assert message.startswith(f"{checkpoints['seg']} does not fit the model of {VOL_CFG}: ")
    assert message.endswith("it was trained with config 'upernet_rdnet_ade20k_demo'")


def test_weights_of_another_arch_are_refused_with_the_shapes(checkpoints):
    # RDNet-T weights (the demo's UperNet) in an RDNet-S UperNet: same module names, other shapes
    with pytest.raises(BadCheckpointError, match=r'does not fit the model of configs/upernet_rdnet-s_ade20k.py: .*'
                                                 r'of another shape \(backbone\.\S+: \(\d+, .*in the checkpoint'):
        init_model('configs/upernet_rdnet-s_ade20k.py', checkpoints['seg'])
    model = init_model(osp.join(ROOT, SEG_CFG), checkpoints['seg'])  # its own config loads it
    assert torch.equal(model.state_dict()['backbone.stem.0.weight'],
                       torch.load(checkpoints['seg'], weights_only=True)['state_dict']['backbone.stem.0.weight'])


class _Evil:
    def __reduce__(self):
        return exec, ('print("ran")',)


def test_config_checkpoint_and_input_errors_are_one_line(user_error, checkpoints, demo_data, tmp_path):
    message = user_error('tools/train.py', 'configs/no_such_config.py')
    assert message == 'config file not found: configs/no_such_config.py'
    message = user_error('tools/train.py', SEG_CFG, '--work-dir', tmp_path / 'w', *_data_options(demo_data),
                         'model.backbone.type=RDNett')
    assert message.startswith('unknown type RDNett: it is not in the mmseg::model registry')
    evil = tmp_path / 'evil.pth'
    with open(evil, 'wb') as f:
        pickle.dump({'state_dict': {}, 'x': _Evil()}, f, protocol=2)
    message = user_error('tools/infer.py', SEG_CFG, evil, demo_data, '--out-dir', tmp_path / 'o')
    assert message.startswith(f'{evil}: refused to load: its pickle needs `exec`')
    message = user_error('tools/infer.py', SEG_CFG, checkpoints['vol'].replace('vol', 'none'), demo_data)
    assert message.endswith('none.pth can not be found.')
    # a single unreadable input: the run failed
    broken = tmp_path / 'broken.jpg'
    broken.write_text('not an image')
    message = user_error('tools/infer.py', SEG_CFG, checkpoints['seg'], broken, '--out-dir', tmp_path / 'o')
    assert message == f"none of the 1 input(s) at '{broken}' could be read (first: {broken}: not a readable image)"
    message = user_error('tools/infer.py', VOL_CFG, checkpoints['vol'], demo_data, '--out-dir', tmp_path / 'o')
    assert message == f'{VOL_CFG} is a volume config: use tools/infer_volume.py'
    # infer_volume.py names the file (and its case), not "case None"
    bad_volume = tmp_path / 'case_7.nii.gz'
    bad_volume.write_bytes(b'not gzip')
    message = user_error('tools/infer_volume.py', VOL_CFG, checkpoints['vol'], bad_volume, '--out-dir', tmp_path)
    assert message == f'{bad_volume}: its prediction would overwrite it; choose another output folder'
    message = user_error('tools/infer_volume.py', VOL_CFG, checkpoints['vol'], bad_volume, '--out-dir', tmp_path / 'o')
    assert message.startswith(f"none of the 1 cases could be predicted (first: case 'case_7' image file {bad_volume} "
                              'cannot be read as NIfTI'), message
    assert 'None' not in message
    message = user_error('tools/data/plan_volumes.py', SEG_CFG)
    assert message == f'{SEG_CFG} has no preprocess block (see densedet/preparation/preprocessing.py)'


@pytest.mark.parametrize('shape, said', [(['128'], '--shape 128'), (['0', '128'], '--shape 0 128'),
                                         (['32', '64', '64'], '--shape 32 64 64')])
def test_export_onnx_refuses_a_shape_of_the_wrong_arity_or_a_zero(user_error, shape, said, tmp_path):
    message = user_error('tools/deploy/export_onnx.py', SEG_CFG, '--shape', *shape, '--out', tmp_path / 'm.onnx')
    assert message == f'{said}: a seg model takes 2 positive sizes (H W)'
    assert not (tmp_path / 'm.onnx').exists()


def test_export_onnx_refuses_a_volume_shape_other_than_the_window(user_error, tmp_path):
    message = user_error('tools/deploy/export_onnx.py', VOL_CFG, '--shape', '16', '64', '64', '--out',
                         tmp_path / 'v.onnx')
    assert message == ('--shape 16 64 64: the config slides windows of 16 32 32 (test_cfg.roi_size); export that '
                       'shape, or use --dynamic-size')


def test_volume_inference_errors_name_the_case_file(checkpoints, tmp_path):
    from densedet.apis import inference_volume, init_volume_model
    model = init_volume_model(osp.join(ROOT, VOL_CFG), checkpoints['vol'])
    flat = tmp_path / 'scan_3.nii.gz'
    import nibabel as nib
    import numpy as np
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8, 2), np.float32), np.eye(4)), str(flat))
    with pytest.raises(BadDataError, match=r"case 'scan_3' image file \S+scan_3.nii.gz has shape \(8, 8, 8, 2\)"):
        inference_volume(model, str(flat))


@pytest.mark.parametrize('backbone, expected', [
    ("type='HarDNet', arch='fc71'", "HarDNet: unknown arch 'fc71'; choose one of ['39', '68', '85', 'fc70'] or pass "
                                    "a dict"),
    ("type='DenseNet', arch='121', csp_ratio=1.5", 'DenseNet: csp_ratio must be in (0, 1) (the share of channels '
                                                   'through the dense block; CSPNet uses 0.5), got 1.5'),
])
def test_bad_seed_network_arguments_are_one_line(user_error, demo_data, tmp_path, backbone, expected):
    cfg = tmp_path / 'bad_backbone.py'
    cfg.write_text(f"_base_ = ['{ROOT}/{SEG_CFG}']\nmodel = dict(backbone=dict(_delete_=True, {backbone}))\n")
    assert user_error('tools/train.py', cfg, '--work-dir', tmp_path / 'w', *_data_options(demo_data)) == expected
