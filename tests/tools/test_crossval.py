"""tools/crossval.py, tools/find_best_configuration.py and infer_volume.py --recipe on the synthetic
MSD task (4 cases, 2 folds, a few iterations): a kill during a fold and the rerun that resumes it,
the summary's numbers against the written predictions, the choice among two configurations and
their ensemble, and the recipe's prediction against averaging the folds by hand."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from densedet.apis import inference_volume, init_volume_model
from densedet.evaluation import dice_from_counts, keep_largest_component
from densedet.fileio import read_nifti
from densedet.structures import probabilities

from scripts import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# Kills the process (SIGKILL, nothing flushed) after the checkpoint of iteration KILL_AT_ITER of the
# fold whose work dir ends with KILL_IN, when those are set: the test's "kill".
KILL_HOOK = '''
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillAtIteration(Hook):
    priority = 'LOWEST'  # after CheckpointHook (VERY_LOW) has saved the iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        where, at = os.environ.get('KILL_IN'), os.environ.get('KILL_AT_ITER')
        if where and runner.work_dir.endswith(where) and runner.iter + 1 == int(at):
            os.kill(os.getpid(), signal.SIGKILL)
'''


def write_config(tmp_path, msd_demo, splits, name, seed=0, max_iters=3):
    text = f'''_base_ = [{osp.join(ROOT, 'configs/demo/denseunet3d_msd-liver_demo.py')!r}]
custom_imports = dict(imports=['killhook'], allow_failed_imports=False)
custom_hooks = [dict(type='KillAtIteration')]
data_root = {msd_demo!r}
splits_file = {str(splits)!r}
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, cases=None, splits_file=splits_file, fold=0))
val_dataloader = dict(dataset=dict(data_root=data_root, cases=None, splits_file=splits_file, fold=0, fold_part='val'))
test_dataloader = val_dataloader
max_iters = {max_iters}
train_cfg = dict(max_iters=max_iters, val_interval=100)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=1),
                   dict(type='PolyLR', eta_min=0.0, power=0.9, begin=1, end=max_iters, by_epoch=False)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=5))
randomness = dict(seed={seed})
'''
    path = tmp_path / f'{name}.py'
    path.write_text(text)
    return str(path)


@pytest.fixture(scope='session')
def crossvalidated(msd_demo, tmp_path_factory):
    """Two configurations cross-validated on 2 folds; the first one killed in fold 1 and resumed.
    Built once for the whole run: pytest-xdist workers share it (a file lock; the tests only read it)."""
    from filelock import FileLock
    shared = tmp_path_factory.getbasetemp()
    shared = shared.parent if os.environ.get('PYTEST_XDIST_WORKER') else shared
    tmp_path = shared / 'crossval_shared'
    with FileLock(str(tmp_path) + '.lock'):
        if not (tmp_path / 'built.json').is_file():
            # the synthetic task itself: a copy of this worker's msd_demo (workers have their own)
            import shutil
            shutil.rmtree(tmp_path, ignore_errors=True)
            tmp_path.mkdir()
            shutil.copytree(msd_demo, tmp_path / 'Task03_Liver')
            (tmp_path / 'built.json').write_text(json.dumps(build_crossvalidations(tmp_path)))
    sys.path.insert(0, str(tmp_path))  # the configs as run import the hook (custom_imports)
    built = json.loads((tmp_path / 'built.json').read_text())
    yield dict(built, work_a=tmp_path / 'a' / 'crossval', work_b=tmp_path / 'b' / 'crossval',
               msd=str(tmp_path / 'Task03_Liver'), tmp=tmp_path)
    sys.path.remove(str(tmp_path))


def build_crossvalidations(tmp_path):
    (tmp_path / 'killhook.py').write_text(KILL_HOOK)
    msd_demo = str(tmp_path / 'Task03_Liver')
    splits = tmp_path / 'splits.json'
    splits.write_text(json.dumps([dict(train=['liver_2', 'liver_3'], val=['liver_0', 'liver_1']),
                                  dict(train=['liver_0', 'liver_1'], val=['liver_2', 'liver_3'])]))
    env = dict(os.environ, PYTHONPATH=str(tmp_path), OMP_NUM_THREADS='1')
    cfg_a = write_config(tmp_path, msd_demo, splits, 'cv_a', seed=0)
    cfg_b = write_config(tmp_path, msd_demo, splits, 'cv_b', seed=1, max_iters=2)
    work_a, work_b = tmp_path / 'a' / 'crossval', tmp_path / 'b' / 'crossval'

    def run(cfg, work, **extra):
        out = subprocess.run([sys.executable, 'tools/crossval.py', cfg, '--work-dir', str(work),
                              '--save-probabilities', '--tta'], cwd=ROOT, capture_output=True, text=True,
                             timeout=600, env=dict(env, **extra))
        return out.returncode, out.stdout + out.stderr

    code, killed = run(cfg_a, work_a, KILL_IN='fold_1', KILL_AT_ITER='2')
    assert code == -9, killed[-3000:]
    code, resumed = run(cfg_a, work_a)
    assert code == 0, resumed[-3000:]
    code, log_b = run(cfg_b, work_b)
    assert code == 0, log_b[-3000:]
    return dict(killed=killed, resumed=resumed)


def test_crossval_resumes_after_a_kill_without_retraining_finished_folds(crossvalidated):
    work = crossvalidated['work_a']
    killed, resumed = crossvalidated['killed'], crossvalidated['resumed']
    assert 'fold 0: training' in killed and 'fold 1: training' in killed
    assert 'fold 0: finished before' in resumed and 'fold 0: training' not in resumed
    assert f'fold 1: resuming training from {work / "fold_1" / "iter_2.pth"}' in resumed
    assert 'Iter(train) [3/3]' in resumed and 'Iter(train) [1/3]' not in resumed
    record = json.loads((work / 'fold_1' / 'fold_done.json').read_text())
    assert record['checkpoint'].endswith('iter_3.pth') and record['cases'] == ['liver_2', 'liver_3']


def test_summary_numbers_come_from_the_held_out_predictions(crossvalidated):
    work, msd = crossvalidated['work_a'], crossvalidated['msd']
    summary = json.loads((work / 'summary.json').read_text())
    assert summary['classes'] == ['liver', 'tumour'] and summary['folds_run'] == [0, 1]
    by_case = {c['case_id']: c for c in summary['cases']}
    assert sorted(by_case) == ['liver_0', 'liver_1', 'liver_2', 'liver_3']
    for case_id, case in by_case.items():
        fold = 0 if case_id in ('liver_0', 'liver_1') else 1
        assert case['fold'] == fold
        pred = read_nifti(str(work / f'fold_{fold}' / 'validation' / f'{case_id}.nii.gz'), dtype=None).data
        label = read_nifti(osp.join(msd, 'labelsTr', f'{case_id}.nii.gz'), dtype=None).data
        for c, name in ((1, 'liver'), (2, 'tumour')):
            p, g = pred == c, label == c
            tp = int((p & g).sum())
            expected = dice_from_counts(tp, int(p.sum()) - tp, int(g.sum()) - tp)
            assert case['dice'][name] == pytest.approx(expected, abs=1e-12) or (np.isnan(expected)
                                                                              and case['dice'][name] is None)
    folds = [np.mean([by_case[c]['dice']['liver'] for c in members])
             for members in (('liver_0', 'liver_1'), ('liver_2', 'liver_3'))]
    assert summary['over_folds']['dice']['liver']['mean'] == pytest.approx(np.mean(folds))
    assert summary['over_folds']['dice']['liver']['sd'] == pytest.approx(np.std(folds, ddof=1))
    rows = (work / 'summary.csv').read_text().splitlines()
    assert rows[0] == 'case_id,fold,class,dice,hd95' and len(rows) == 1 + 4 * 2
    assert (work / 'summary.png').stat().st_size > 1000
    cv = json.loads((work / 'crossval.json').read_text())
    assert cv['num_folds'] == 2 and set(cv['folds']) == {'0', '1'}
    probs = np.load(work / 'fold_0' / 'validation' / 'liver_0.npz')['probabilities']
    assert probs.dtype == np.float16 and probs.shape[0] == 3
    assert np.allclose(probs.astype(np.float32).sum(0), 1, atol=3e-3)


def test_best_configuration_and_the_recipe_prediction_equal_averaging_by_hand(crossvalidated, tmp_path, capsys):
    work_a, work_b, msd = crossvalidated['work_a'], crossvalidated['work_b'], crossvalidated['msd']
    recipe_path = tmp_path / 'recipe.json'
    recipe = load_script('tools/find_best_configuration.py').main([str(work_a), str(work_b), '--out',
                                                                    str(recipe_path)])
    out = capsys.readouterr().out
    names = [c['name'] for c in recipe['candidates']]
    assert names == ['a', 'b', 'ensemble(a + b)']
    for c in recipe['candidates']:  # the choice is printed with the numbers behind it
        assert f'{c["name"]}: mean foreground Dice {100 * c["mean_fg_dice"]:.2f}' in out
    best = max(recipe['candidates'], key=lambda c: c['mean_fg_dice'])
    assert recipe['chosen'] == best['name'] and f'chosen: {best["name"]}' in out
    # single configurations are scored as their summaries say (mean over classes of the case means)
    summary_a = json.loads((work_a / 'summary.json').read_text())
    expected_a = np.mean([summary_a['over_cases']['dice'][n]['mean'] for n in ('liver', 'tumour')])
    assert recipe['candidates'][0]['mean_fg_dice'] == pytest.approx(expected_a)

    # force the ensemble into the recipe, then predict one case with it and by hand
    recipe = json.loads(recipe_path.read_text())
    recipe['members'] = [dict(name=n, config=str(w / 'config.py'),
                              checkpoints=[json.loads((w / f'fold_{k}' / 'fold_done.json').read_text())['checkpoint']
                                           for k in (0, 1)]) for n, w in (('a', work_a), ('b', work_b))]
    recipe['postprocessing'] = dict(largest_component=[1])
    recipe_path.write_text(json.dumps(recipe))
    case = osp.join(msd, 'imagesTs', 'liver_4.nii.gz')
    load_script('tools/infer_volume.py').main(['--recipe', str(recipe_path), case, '--out-dir', str(tmp_path / 'out')])
    written = read_nifti(str(tmp_path / 'out' / 'liver_4.nii.gz'), dtype=None)
    members = []
    for member in recipe['members']:
        fold_probs = []
        for ckpt in member['checkpoints']:
            model = init_volume_model(member['config'], ckpt, tta=True)
            model.test_cfg['keep_logits'] = True
            fold_probs.append(probabilities(inference_volume(model, case).seg_logits))
        members.append(torch.stack(fold_probs).mean(0))
    by_hand = keep_largest_component(torch.stack(members).mean(0).argmax(0), [1]).numpy()
    assert by_hand.any() and np.array_equal(written.data, by_hand)
    assert np.allclose(written.affine, read_nifti(case).affine)


def test_crossval_and_recipe_errors_are_one_line(user_error, crossvalidated, tmp_path):
    work = crossvalidated['work_a']
    said = user_error('tools/crossval.py', 'configs/demo/denseunet3d_msd-liver_demo.py', '--work-dir',
                      tmp_path / 'none')
    assert said == ('configs/demo/denseunet3d_msd-liver_demo.py: no dataset of train_dataloader, val_dataloader, '
                    'test_dataloader has a splits_file; cross-validation needs the folds (tools/data/plan_volumes.py '
                    'writes splits.json)')
    config = str(work / 'config.py')
    said = user_error('tools/crossval.py', config, '--folds', '7', '--work-dir', tmp_path / 'f7')
    assert said == f'{crossvalidated["tmp"] / "splits.json"}: fold 7 does not exist (folds 0..1)'
    recipe = dict(members=[dict(config=config, checkpoints=[str(tmp_path / 'gone.pth')])],
                  postprocessing=dict(largest_component=[]))
    (tmp_path / 'recipe.json').write_text(json.dumps(recipe))
    said = user_error('tools/infer_volume.py', '--recipe', tmp_path / 'recipe.json', 'x.nii.gz', '--out-dir',
                      tmp_path)
    assert said == f'{tmp_path / "recipe.json"}: members[0].checkpoints[0] {tmp_path / "gone.pth"} does not exist'
    from densedet.fileio import exclusive_lock
    with exclusive_lock(str(tmp_path / 'busy' / 'fold_0'), 'another run') as lock:  # a second run of one fold
        said = user_error('tools/crossval.py', config, '--folds', '0', '--work-dir', tmp_path / 'busy')
    assert said == (f'fold 0 of {tmp_path / "busy"} is being run by another process (pid {os.getpid()}; lock '
                    f'{lock}): wait for it or stop it; a killed run leaves no lock behind')
    said = user_error('tools/find_best_configuration.py', tmp_path)
    assert said == f'{tmp_path / "crossval.json"} does not exist: run tools/crossval.py until its summary is written'
    import shutil
    copy = tmp_path / 'b' / 'crossval'  # the shared runs stay as they are: a copy loses a file
    shutil.copytree(crossvalidated['work_b'], copy)
    cv = json.loads((copy / 'crossval.json').read_text())
    for record in cv['folds'].values():
        record['validation'] = record['validation'].replace(str(crossvalidated['work_b']), str(copy))
    (copy / 'crossval.json').write_text(json.dumps(cv))
    npz = copy / 'fold_0' / 'validation' / 'liver_0.npz'
    npz.unlink()
    said = user_error('tools/find_best_configuration.py', work, copy, '--out', tmp_path / 'r.json')
    assert said == (f'{npz} does not exist: ensembles need the held-out probabilities (tools/crossval.py '
                    '--save-probabilities) of b')


def test_slurm_script_submits_one_array_task_per_fold_then_the_summary(tmp_path):
    """tools/slurm_crossval.sh against a stand-in sbatch that records its arguments."""
    (tmp_path / 'sbatch').write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" >> "$SBATCH_LOG"\necho "---" >> '
                                     '"$SBATCH_LOG"\necho $((RANDOM % 1000 + 1000))\n')
    (tmp_path / 'sbatch').chmod(0o755)
    log = tmp_path / 'sbatch.log'
    env = dict(os.environ, PATH=f'{tmp_path}:{os.environ["PATH"]}', SBATCH_LOG=str(log), GPUS='4', FOLDS='5')
    out = subprocess.run(['bash', 'tools/slurm_crossval.sh', 'gpu', 'configs/x.py', '--save-probabilities'],
                         cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    fold_job, summary_job = log.read_text().split('---\n')[:2]
    assert '--array=0-4' in fold_job and '--ntasks=4' in fold_job
    assert ('srun  python -u tools/crossval.py configs/x.py --folds $SLURM_ARRAY_TASK_ID --launcher slurm '
            '--save-probabilities') in fold_job
    assert '--dependency=afterok:' in summary_job
    assert 'python -u tools/crossval.py configs/x.py --summarize-only --save-probabilities' in summary_job
    assert out.stdout.startswith('folds: job array ')


def test_folds_table_times_and_scores_subsets_of_the_recipe(crossvalidated, tmp_path, capsys):
    """benchmark.py --volume-prediction --folds-table: every fold, then subsets, on labelled cases."""
    recipe_path = tmp_path / 'recipe.json'
    load_script('tools/find_best_configuration.py').main([str(crossvalidated['work_a']), '--out', str(recipe_path),
                                                          '--no-tta'])
    bench = load_script('tools/analysis/bench_volume_prediction.py')
    rows = bench.main(['--folds-table', str(recipe_path), crossvalidated['msd'], '--fold-subsets', '0', '1',
                       '--threads', '1'])
    assert [(r['folds'], r['models']) for r in rows] == [('every fold', 2), ('folds 0', 1), ('folds 1', 1)]
    assert all(r['s_per_case'] > 0 and set(r['dice']) == {'liver', 'tumour'} for r in rows)
    assert all(0 <= d <= 1 for r in rows for d in r['dice'].values())
    assert '| folds 0 | 1 |' in capsys.readouterr().out


def test_settings_table_times_and_scores_each_speed_setting(crossvalidated, capsys):
    """benchmark.py --volume-prediction --settings: every speed setting on a fold's validation cases."""
    work = crossvalidated['work_a']
    checkpoint = json.loads((work / 'fold_0' / 'fold_done.json').read_text())['checkpoint']
    bench = load_script('tools/analysis/bench_volume_prediction.py')
    rows = bench.main(['--settings', str(work / 'config.py'), checkpoint, '--fold', '0', '--repeat', '1',
                       '--threads', '1'])
    assert [r['setting'] for r in rows] == [s[0] for s in bench.SETTINGS]
    assert all(r['s_per_case'] > 0 and 0 <= r['dice']['liver'] <= 1 for r in rows)
    out = capsys.readouterr().out  # one table row per setting, each with its ratio to the first
    assert out.count('x | ') == len(rows) and '| setting | s / case | vs first row |' in out
