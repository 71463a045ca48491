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


# --- folders in, folders out; speed settings ---------------------------------------------------
def _nifti_case(path, seed, shape=(20, 24, 12)):
    rng = np.random.default_rng(seed)
    affine = np.diag([1.5, 1.2, 2.0, 1.0])
    affine[:3, 3] = [seed, -3, 7]
    nib.save(nib.Nifti1Image(rng.normal(size=shape).astype(np.float32), affine), str(path))
    return affine


def test_find_cases_groups_channel_files_and_reads_lists(tmp_path):
    from densedet.apis.volume_inference import find_cases
    folder = tmp_path / 'in'
    folder.mkdir()
    for name in ('b_0001.nii.gz', 'b_0000.nii.gz', 'a_0000.nii.gz'):
        (folder / name).write_bytes(b'')
    assert find_cases([str(folder)]) == [('a', [str(folder / 'a_0000.nii.gz')], 'a.nii.gz'),
                                         ('b', [str(folder / 'b_0000.nii.gz'), str(folder / 'b_0001.nii.gz')],
                                          'b.nii.gz')]
    (folder / 'plain.nii').write_bytes(b'')  # not every file is a channel file: one case per file
    assert [c[0] for c in find_cases([str(folder)])] == ['a_0000', 'b_0000', 'b_0001', 'plain']
    listing = tmp_path / 'cases.txt'
    listing.write_text(f'# case list\n{folder}/b_0000.nii.gz {folder}/b_0001.nii.gz\n\n/missing/c.nii\n')
    assert find_cases([str(listing)]) == [('b_0000', [f'{folder}/b_0000.nii.gz', f'{folder}/b_0001.nii.gz'],
                                           'b_0000.nii.gz'), ('c', ['/missing/c.nii'], 'c.nii')]


def test_folder_prediction_writes_every_case_lists_the_unreadable_and_resumes(demo_checkpoint, tmp_path, capsys):
    main = load_script('tools/infer_volume.py').main
    cfg, ckpt = demo_checkpoint
    cfg_path = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_path)
    folder, out = tmp_path / 'cases', tmp_path / 'pred'
    folder.mkdir()
    affines = {f'case_{i}': _nifti_case(folder / f'case_{i}.nii.gz', i) for i in range(3)}
    (folder / 'broken.nii.gz').write_bytes(b'not gzip')
    written = main([cfg_path, ckpt, str(folder), '--out-dir', str(out), '--mirror-axes', '1', '2'])
    assert sorted(os.path.basename(w) for w in written) == [f'case_{i}.nii.gz' for i in range(3)]
    for case, affine in affines.items():
        pred = nib.load(str(out / f'{case}.nii.gz'))
        assert pred.shape == (20, 24, 12)
        np.testing.assert_allclose(pred.affine, affine)
    said = capsys.readouterr()
    assert '1 of 4 cases could not be predicted' in said.out
    assert f'broken: case \'broken\' image file {folder}/broken.nii.gz cannot be read as NIfTI' in said.out
    assert '4/4' in said.err and 'case/s' in said.err  # the progress bar
    # a rerun after a kill: the predicted cases are skipped, the missing one predicted
    os.remove(out / 'case_1.nii.gz')
    (folder / 'broken.nii.gz').unlink()
    assert main([cfg_path, ckpt, str(folder), '--out-dir', str(out)]) == [str(out / 'case_1.nii.gz')]
    assert '2 of 3 cases already predicted' in capsys.readouterr().out
    assert main([cfg_path, ckpt, str(folder), '--out-dir', str(out)]) == []


def test_folder_prediction_bad_input(user_error, demo_checkpoint, tmp_path):
    cfg, ckpt = demo_checkpoint
    cfg_path = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_path)
    empty = tmp_path / 'empty'
    empty.mkdir()
    run = ['tools/infer_volume.py', cfg_path, ckpt]
    assert user_error(*run, empty, '--out-dir', tmp_path / 'o') == f'{empty}: no NIfTI files (.nii / .nii.gz) in ' \
        'this folder'
    assert user_error(*run, tmp_path / 'nope.nii.gz', '--out-dir', tmp_path / 'o').startswith(
        "none of the 1 cases could be predicted (first: case 'nope' image file not found")
    assert user_error(*run, tmp_path / 'x.png', '--out-dir', tmp_path / 'o') == f'input not found: {tmp_path}/x.png'
    assert user_error(*run, empty, '--out-dir', tmp_path / 'o', '--mirror-axes', '3') == \
        'mirror axes are the spatial axes 0 (D), 1 (H), 2 (W); got [3]'
    assert user_error(*run, empty, '--out-dir', tmp_path / 'o', '--overlap', '1') == \
        'overlap must be in [0, 1), got 1.0'
    assert user_error(*run, empty, '--out-dir', tmp_path / 'o', '--folds', '0') == \
        '--folds selects the folds of a --recipe; with CONFIG CHECKPOINT there is one model'


def test_speed_settings_reach_the_segmentor(demo_checkpoint):
    cfg, ckpt = demo_checkpoint

    def forward_passes(**settings):
        model = init_volume_model(cfg, ckpt, **settings)
        calls = []
        net = model.forward_logits
        model.forward_logits = lambda x: calls.append(x.shape[0]) or net(x)
        with torch.no_grad():
            model.predict(torch.zeros(1, 1, 16, 40, 40))  # the demo's window is 16 x 32 x 32
        return sum(calls)  # windows through the network

    assert forward_passes(overlap=0.5, mirror_axes=[]) == 4  # windows at 0, 8 in H and W
    assert forward_passes(overlap=0.0, mirror_axes=[]) == 4
    assert forward_passes(overlap=0.9, mirror_axes=[]) == 16  # 3 px apart: 0, 3, 6, 8
    assert forward_passes(overlap=0.5, mirror_axes=[0, 2]) == 4 * 4  # + D, W, D and W mirrored
    assert forward_passes(overlap=0.5, tta=True) == 4 * 5  # the default TTA: D, H, W, H and W
    assert forward_passes(overlap=0.5, tta=True, mirror_axes=[]) == 4  # mirroring off wins over --tta


def test_recipe_fold_subset():
    from densedet.apis.ensemble import recipe_checkpoints
    from densedet.errors import BadInputError
    member = dict(name='m', config='c.py', folds=[0, 2, 4], checkpoints=['f0.pth', 'f2.pth', 'f4.pth'])
    assert recipe_checkpoints(member) == ['f0.pth', 'f2.pth', 'f4.pth']
    assert recipe_checkpoints(member, [4, 0]) == ['f4.pth', 'f0.pth']
    assert recipe_checkpoints(dict(checkpoints=['a', 'b']), [1]) == ['b']  # recipes written without folds
    with pytest.raises(BadInputError, match=r'member m has folds \[0, 2, 4\], not \[1\]'):
        recipe_checkpoints(member, [1])


def test_cases_the_plans_cannot_handle_are_refused(msd_demo, preprocessed_volume_config, tmp_path):
    """The plans record the training cases' slice direction: a case stored with its axes swapped, or
    with a broken spacing, is one clear error instead of a silently wrong prediction."""
    from densedet.errors import BadDataError
    from densedet.fileio import voxel_axes
    from densedet.preparation import plan_from_config
    cfg_path = preprocessed_volume_config(msd_demo, tmp_path / 'pre')
    plans = plan_from_config(Config.fromfile(cfg_path), log=lambda *a: None, network=False)
    case = os.path.join(msd_demo, 'imagesTr', sorted(os.listdir(os.path.join(msd_demo, 'imagesTr')))[0])
    img = nib.load(case)
    assert plans['axes'] == voxel_axes(img.affine)
    model = init_volume_model(cfg_path)
    assert inference_volume(model, case).pred_seg.shape == img.shape[::-1]
    swapped = tmp_path / 'swapped.nii.gz'  # the same anatomy, sagittal slices first: i and k exchanged
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj).transpose(2, 1, 0), img.affine[:, [2, 1, 0, 3]]), str(swapped))
    with pytest.raises(BadDataError, match=r"case 'swapped': the voxel axes \(D, H, W\) of .*swapped.nii.gz run "
                       r"along \['LR', 'AP', 'SI'\], the training cases' along \['SI', 'AP', 'LR'\]"):
        inference_volume(model, str(swapped))
    flat = tmp_path / 'flat.nii'
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), img.affine), str(flat))
    with open(flat, 'r+b') as f:  # pixdim[3] = NaN: a broken header (nibabel will not write one)
        f.seek(88)
        f.write(np.float32(np.nan).tobytes())
    with pytest.raises(BadDataError, match=r"case 'flat': spacing \(nan, .* mm of .*flat.nii is not positive"):
        inference_volume(model, str(flat))
