"""Volume inference on a real NIfTI file shipped with nibabel; the staged load_from handling."""
import os

import nibabel as nib
import numpy as np
import pytest
import torch
from mmengine.config import Config

from densedet.apis import inference_volume, init_volume_model
from densedet.apis.config import prepare_config

from scripts import load_script


@pytest.fixture(scope='module')
def demo_checkpoint(tmp_path_factory, repo_root):
    """The demo config's network with weights created here (no training), saved as mmengine does."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(os.path.join(repo_root, 'configs/demo/denseunet3d_msd-liver_demo.py'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    path = str(tmp_path_factory.mktemp('ckpt') / 'demo.pth')
    meta = dict(dataset_meta=dict(classes=('background', 'liver', 'tumour'), label_values=[0, 1, 2],
                                  modalities=('CT', )))
    torch.save(dict(state_dict=model.state_dict(), meta=meta), path)
    return cfg, path


def test_real_nifti_file_keeps_shape_and_affine(demo_checkpoint, tmp_path):
    from nibabel.testing import data_path
    cfg, ckpt = demo_checkpoint
    src = os.path.join(data_path, 'anatomical.nii')  # a real T1 volume, 2 mm, 33 x 41 x 25
    model = init_volume_model(cfg, ckpt)
    out = str(tmp_path / 'anatomical_seg.nii.gz')
    sample = inference_volume(model, src, out_path=out)
    ref, pred = nib.load(src), nib.load(out)
    assert pred.shape == ref.shape
    np.testing.assert_allclose(pred.affine, ref.affine)
    assert pred.header.get_zooms() == ref.header.get_zooms()
    assert set(np.unique(np.asarray(pred.dataobj))) <= {0, 1, 2}
    assert tuple(sample.pred_seg.shape) == ref.shape[::-1]  # (D, H, W) inside densedet


def test_cli_and_non_volume_config(demo_checkpoint, tmp_path, repo_root):
    main = load_script('tools/infer_volume.py').main
    from nibabel.testing import data_path
    cfg, ckpt = demo_checkpoint
    cfg_path = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_path)
    written = main([cfg_path, ckpt, os.path.join(data_path, 'anatomical.nii'), '--out-dir', str(tmp_path / 'o'),
                    '--tta'])
    assert written == [str(tmp_path / 'o' / 'anatomical.nii')] and os.path.isfile(written[0])
    with pytest.raises(ValueError, match='is not a volume segmentor'):
        init_volume_model(os.path.join(repo_root, 'configs/upernet_rdnet_ade20k.py'))


def test_staged_load_from_and_resume(tmp_path, repo_root):
    cfg_path = os.path.join(repo_root, 'configs/hdenseunet/hdenseunet-3d_lits.py')
    prev = tmp_path / 'stage2d'
    with pytest.raises(FileNotFoundError, match='last_checkpoint does not exist; train the previous stage first'):
        prepare_config(Config.fromfile(cfg_path), cfg_path, check_data=False,
                       cfg_options={'load_from': str(prev / 'last_checkpoint')})
    prev.mkdir()
    (prev / 'last_checkpoint').write_text(str(prev / 'iter_50000.pth'))
    cfg = prepare_config(Config.fromfile(cfg_path), cfg_path, check_data=False,
                         cfg_options={'load_from': str(prev / 'last_checkpoint')})
    assert cfg.load_from == str(prev / 'iter_50000.pth')
    # --resume with a checkpoint of its own: the previous stage is not loaded, mmengine resumes this run
    work = tmp_path / 'stage3d'
    work.mkdir()
    (work / 'last_checkpoint').write_text(str(work / 'iter_10.pth'))
    cfg = prepare_config(Config.fromfile(cfg_path), cfg_path, work_dir=str(work), check_data=False, resume=True,
                         cfg_options={'load_from': str(prev / 'last_checkpoint')})
    assert cfg.load_from is None and cfg.resume
    # tools/test.py's checkpoint wins over the config's previous stage
    cfg = prepare_config(Config.fromfile(cfg_path), cfg_path, check_data=False, load_from='x.pth')
    assert cfg.load_from == 'x.pth'
