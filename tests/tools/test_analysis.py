import json
import os

import pytest

from scripts import load_script

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
benchmark = load_script('tools/analysis/benchmark.py')
bench_backbone = load_script('tools/analysis/bench_backbone.py')
bench_unetpp = load_script('tools/analysis/bench_unetpp.py')
bench_volume = load_script('tools/analysis/bench_volume.py')
get_flops = load_script('tools/analysis/get_flops.py')
plot_curves = load_script('tools/analysis/plot_curves.py')


def test_get_flops_counts_every_parameter():
    from densedet.models.backbones import RDNet
    model = RDNet(arch='tiny')
    res = get_flops.complexity(model, (64, 64))
    assert res['params'] == sum(p.numel() for p in model.parameters())
    # 224x224 has (224/64)^2 = 12.25x the pixels; every layer is convolutional
    res224 = get_flops.complexity(model, (224, 224))
    assert abs(res224['flops'] / res['flops'] - 12.25) < 0.01


class _WorkerArgs:
    """What benchmark.py's parser hands a backbone / config worker (fp32, NCHW, eager, CPU)."""
    family, arch, config, size, batch, threads, iters = 'rdnet', 'tiny', None, 64, 1, 1, 1
    precision, channels_last, compile, device = 'fp32', False, None, 'cpu'


def test_benchmark_worker_measures_each_model():
    class Args(_WorkerArgs):
        pass
    for name in ('densedet', 'densedet-cp', 'reference'):
        Args.worker = name
        res = bench_backbone.worker(Args)
        assert res['forward_s'] > 0 and res['train_s'] > 0 and res['saved_mib'] > 0
    Args.worker = 'densedet'
    plain = bench_backbone.worker(Args)['saved_mib']
    Args.worker = 'densedet-cp'
    assert bench_backbone.worker(Args)['saved_mib'] < 0.5 * plain


def test_benchmark_worker_in_bf16_channels_last_compiled():
    class Args(_WorkerArgs):
        worker, precision, channels_last, compile = 'densedet', 'bf16', True, 'eager'
    res = bench_backbone.worker(Args)
    assert res['forward_s'] > 0 and res['train_s'] > 0
    Args.compile = None  # bf16 autocast keeps fewer bytes for backward than fp32
    low = bench_backbone.worker(Args)['saved_mib']
    Args.precision = 'fp32'
    assert low < 0.8 * bench_backbone.worker(Args)['saved_mib']


def test_plot_curves_reads_scalars(tmp_path):
    run = tmp_path / '20260101_000000' / 'vis_data'
    run.mkdir(parents=True)
    with open(run / 'scalars.json', 'w') as f:
        for i in range(1, 4):
            f.write(json.dumps({'loss': 1.0 / i, 'lr': 0.1, 'iter': i, 'step': i}) + '\n')
        f.write(json.dumps({'aAcc': 50.0, 'mIoU': 20.0, 'step': 3}) + '\n')
    train, val = plot_curves.read_scalars(str(tmp_path))
    assert len(train) == 3 and val[0]['mIoU'] == 20.0
    out = plot_curves.plot(str(tmp_path), str(tmp_path / 'curves.png'))
    assert os.path.getsize(out) > 1000


def test_benchmark_families_with_and_without_reference():
    class Args(_WorkerArgs):
        pass
    for family, arch, name in (('densenet', '121', 'reference'), ('densenet', '121', 'densedet'),
                               ('hardnet', '39', 'densedet-cp')):
        Args.family, Args.arch, Args.worker = family, arch, name
        assert bench_backbone.worker(Args)['train_s'] > 0


def test_benchmark_detector_worker_measures_both_detectors():
    class Args:
        family, arch, config, size, batch, threads, iters, detector = 'rdnet', 'tiny', None, 128, 1, 1, 1, True
    for name in ('rdnet', 'resnet50'):
        Args.worker = name
        res = bench_backbone.worker(Args)
        assert res['model'] == name and res['forward_s'] > 0 and res['train_s'] > 0 and res['saved_mib'] > 0


def test_neck_complexity_counts_dense_fusion():
    base = dict(in_channels=[16, 32, 64, 128], out_channels=16, num_outs=5)
    fpn = get_flops.neck_complexity(dict(type='FPN', **base), base['in_channels'], (128, 128))
    dense = get_flops.neck_complexity(dict(type='DenseFPN', **base), base['in_channels'], (128, 128))
    assert dense['params'] - fpn['params'] == (4 + 3 + 2) * 16 * 16 + 3 * 16
    # the 1x1 reductions run each input's C x C slice at that input's resolution (32x32, 16x16,
    # 8x8, 4x4 maps at strides 4-32): level 0 reads levels 0-3, level 1 levels 1-3, level 2 levels 2-3
    positions = (1024 + 256 + 64 + 16) + (256 + 64 + 16) + (64 + 16)
    # the counter also counts element-wise sums: DenseFPN adds 3, 2, 1 upsampled projections per
    # element at levels 0-2 where FPN adds one upsampled lateral
    sums = 16 * (3 * 1024 + 2 * 256 + 1 * 64) - 16 * (1024 + 256 + 64)
    assert dense['flops'] - fpn['flops'] == 16 * 16 * positions + sums


def test_unetpp_pruning_benchmark_times_every_level():
    res = bench_unetpp.unetpp_pruning(size=32, threads=1, rounds=1, iters=1)
    assert list(res) == ['accurate (L4, 4 heads)', 'L4', 'L3', 'L2', 'L1'] and all(t > 0 for t in res.values())


def test_volume_benchmark_times_both_stitchings_and_measures_memory():
    res = bench_volume.volume_inference('time', size=32, threads=1, iters=1, net='conv')
    assert res['densedet_s'] > 0 and res['monai_s'] > 0 and res['voxels'] == 16 * 32 * 32
    assert bench_volume.volume_inference('densedet', size=32, threads=1, iters=1, net='conv')['peak_mib'] >= 0


def test_volume_data_benchmark_compares_the_nifti_and_preprocessed_paths(tmp_path, capsys):
    """benchmark.py --volume-data on two tiny cases (nnU-Net's part needs its own venv: not here)."""
    benchmark_volume_data = load_script('tools/analysis/benchmark_volume_data.py')
    report = benchmark_volume_data.main(['--size', '48', '--depth', '24', '--cases', '2', '--samples', '2',
                                         '--patch', '16', '32', '32', '--work-dir', str(tmp_path)])
    for path in ('nifti', 'preprocessed', 'preprocessed-load'):
        assert report[path]['per_sample_s'] > 0 and report[path]['peak_rise_mib'] >= 0
    assert report['densedet_preprocess']['per_case_s'] > 0 and 'nnunet' not in report
    assert len(report['densedet_preprocess']['spacing']) == 3
    out = capsys.readouterr().out
    assert '| densedet preprocessed, patch only (no augmentation) |' in out and "nnU-Net v2's loader" not in out
    # the raw task is nnU-Net v2's layout, read by densedet's NnUNetDataset
    task = tmp_path / 'nnunet_raw' / benchmark_volume_data.DATASET
    assert json.loads((task / 'dataset.json').read_text())['file_ending'] == '.nii.gz'
    assert sorted(os.listdir(task / 'imagesTr')) == ['liver_000_0000.nii.gz', 'liver_001_0000.nii.gz']


def test_plot_curves_of_a_detection_run_picks_its_metric_and_epochs(tmp_path, monkeypatch):
    run = tmp_path / '20260101_000000' / 'vis_data'
    run.mkdir(parents=True)
    with open(run / 'scalars.json', 'w') as f:
        for epoch in (1, 2):
            for i in (10, 20):
                f.write(json.dumps({'loss': 1.0, 'lr': 0.02, 'epoch': epoch, 'iter': i, 'step': (epoch - 1) * 20 + i})
                        + '\n')
            f.write(json.dumps({'coco/bbox_mAP': 0.1 * epoch, 'coco/segm_mAP': 0.2 * epoch, 'step': epoch}) + '\n')
    _, val = plot_curves.read_scalars(str(tmp_path))
    assert plot_curves.pick_metric(val) == 'coco/segm_mAP' and plot_curves.pick_metric(val, 'coco/bbox_mAP')
    with pytest.raises(KeyError, match="metric 'mIoU' is not in the validation log"):
        plot_curves.pick_metric(val, 'mIoU')
    labels = []
    monkeypatch.setattr(plot_curves.plt.Axes, 'set', lambda self, **kw: labels.append(kw), raising=False)
    plot_curves.plot(str(tmp_path), str(tmp_path / 'curves.png'))
    assert {'title': 'validation coco/segm_mAP', 'xlabel': 'epoch', 'ylabel': 'coco/segm_mAP'} in labels


def test_volume_benchmark_rejects_a_size_off_the_network_stride(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(['--volume', '--size', '48'])
    assert exit_info.value.code == 2
    assert '--size must be a multiple of 64' in capsys.readouterr().err


def test_benchmark_modes_parse_and_table(tmp_path, capsys):
    parser = benchmark.argparse.ArgumentParser()
    args = benchmark.argparse.Namespace(modes='fp32,bf16+cl,bf16+compile', compile=None, precision='fp32',
                                        channels_last=False)
    modes = bench_backbone.parse_modes(args, parser)
    assert modes == {'fp32': ('fp32', False, None), 'bf16+cl': ('bf16', True, None),
                     'bf16+compile': ('bf16', False, 'inductor')}
    with pytest.raises(SystemExit):
        bench_backbone.parse_modes(benchmark.argparse.Namespace(modes='int8', compile=None), parser)
    keys = ('forward_s', 'train_s', 'peak_mib', 'saved_mib')
    timing = {('densedet', 'fp32'): 0.4, ('convnext', 'fp32'): 0.2, ('densedet', 'bf16+cl'): 0.1,
              ('convnext', 'bf16+cl'): 0.1, ('densedet', 'bf16+compile'): 0.2, ('convnext', 'bf16+compile'): 0.1}
    results = {key: [dict(forward_s=t, train_s=2 * t, peak_mib=1, saved_mib=1)] for key, t in timing.items()}
    args = benchmark.argparse.Namespace(config='x.py', device='cpu', size=64, batch=2, threads=2, rounds=1,
                                        iters=1, json=str(tmp_path / 'r.json'))
    bench_backbone.print_modes_table(args, ['densedet', 'convnext'], modes, results, keys)
    rows = {tuple(c.strip() for c in line.split('|')[1:3]): [c.strip() for c in line.split('|')[3:-1]]
            for line in capsys.readouterr().out.splitlines() if line.startswith('| densedet') or
            line.startswith('| convnext')}
    # forward, vs densedet (same mode), speed-up over fp32; then the same for the train step
    assert rows['convnext', 'fp32'][:3] == ['0.200', '0.50x', '1.00x']
    assert rows['densedet', 'bf16+cl'][:6] == ['0.100', '1.00x', '4.00x', '0.200', '1.00x', '4.00x']
    assert rows['convnext', 'bf16+compile'][:3] == ['0.100', '0.50x', '2.00x']
    assert set(json.load(open(tmp_path / 'r.json'))['summary']) == {f'{m} {mode}' for m, mode in timing}


def test_benchmark_builds_the_config_on_convnext(repo_root):
    config = os.path.join(repo_root, 'configs', 'upernet_rdnet_ade20k.py')
    fn, model = bench_backbone.build('convnext', 'tiny', config)
    model.eval()
    assert type(model.backbone).__name__ == 'TIMMBackbone'
    with bench_backbone.torch.no_grad():
        logits = fn(bench_backbone.torch.randn(1, 3, 64, 64))
    assert logits.shape == (1, 150, 16, 16)


def test_benchmark_profile_splits_depthwise_from_other_convolutions():
    torch = bench_backbone.torch
    depthwise, pointwise = torch.nn.Conv2d(8, 8, 7, padding=3, groups=8), torch.nn.Conv2d(8, 16, 1)
    x = torch.randn(1, 8, 32, 32, requires_grad=True)
    shares = bench_backbone.op_shares(lambda: pointwise(depthwise(x)).sum().backward(), top=50)
    assert {'aten::mkldnn_convolution (depthwise)', 'aten::convolution_backward (depthwise)',
            'aten::convolution_backward (1x1)'} <= set(shares)
    assert 0.99 < sum(shares.values()) <= 1.0 + 1e-9


def test_benchmark_runs_each_model_in_a_worker_process_and_reports(tmp_path, capsys):
    # the whole path of a backbone run: parser, one worker process per model and round, table, JSON
    out = tmp_path / 'r.json'
    benchmark.main(['--arch', 'tiny', '--size', '32', '--batch', '1', '--rounds', '1', '--iters', '1', '--threads', '1',
                    '--models', 'densedet,densedet-cp', '--json', str(out)])
    report = json.loads(out.read_text())
    assert set(report['summary']) == {'densedet', 'densedet-cp'} and report['args']['size'] == 32
    assert all(report['summary'][m]['train_s'] > 0 for m in report['summary'])
    assert '| densedet-cp |' in capsys.readouterr().out


def test_benchmark_hands_volume_data_its_own_options(monkeypatch):
    handed = []
    monkeypatch.setattr(benchmark.benchmark_volume_data, 'main', lambda argv: handed.append(argv))
    benchmark.main(['--size', '48', '--volume-data', '--cases', '2'])
    assert handed == [['--size', '48', '--cases', '2']]


def test_augmentation_benchmark_times_densedets_pipeline(capsys):
    """benchmark.py --augmentation at a small patch (nnU-Net's side needs its venv: skipped here)."""
    report = benchmark.main(['--augmentation', '--patch', '8', '24', '24', '--samples', '3', '--rounds', '1',
                             '--nnunet-python', '/no/such/python'])
    out = capsys.readouterr().out
    from densedet.transforms import spatial_input_size
    assert report['region'] == list(spatial_input_size((8, 24, 24), (30, 30, 30), 0.85)) == [25, 41, 41]
    assert report['densedet_s'] > 0 and 'nnunet_s' not in report
    assert 'ms / sample' in out and 'nnU-Net side skipped' in out


def test_head_to_head_task_scoring_and_table(tmp_path, capsys):
    """The hard task's generator and the benchmark's scoring / table (the training runs need nnU-Net's
    venv and an hour of CPU: docs/benchmarks.md)."""
    import json
    import shutil

    import numpy as np

    from densedet.fileio import read_nifti
    make = load_script('tools/data/make_hard_volume_task.py')
    h2h = load_script('tools/analysis/benchmark_crossval_nnunet.py')
    raw = make.generate(str(tmp_path / 'Dataset502_HardLiver'), cases=3, seed=0)
    again = make.generate(str(tmp_path / 'again'), cases=3, seed=0)
    desc = json.load(open(f'{raw}/dataset.json'))
    assert desc['labels'] == dict(background=0, liver=1, lesion=2) and desc['channel_names'] == {'0': 'CT'}
    label = read_nifti(f'{raw}/labelsTr/hard_000.nii.gz', dtype=None)
    image = read_nifti(f'{raw}/imagesTr/hard_000_0000.nii.gz')
    assert np.array_equal(image.data, read_nifti(f'{again}/imagesTr/hard_000_0000.nii.gz').data)  # seeded
    assert set(np.unique(label.data)) == {0, 1, 2} and label.spacing[0] > 2 * label.spacing[1]  # anisotropic
    # a prediction equal to the label scores 1; one with the lesions erased scores 0 on lesions
    pred = tmp_path / 'pred'
    shutil.copytree(f'{raw}/labelsTr', pred)
    erased = tmp_path / 'erased'
    erased.mkdir()
    from densedet.fileio import write_nifti
    for i in range(3):
        vol = read_nifti(f'{raw}/labelsTr/hard_00{i}.nii.gz', dtype=None)
        write_nifti(np.where(vol.data == 2, 1, vol.data), str(erased / f'hard_00{i}.nii.gz'), vol.affine)
    splits = [dict(train=['hard_002'], val=['hard_000', 'hard_001']), dict(train=['hard_000'], val=['hard_002'])]
    perfect = h2h.score(str(tmp_path), raw, splits, [dict(fold=0, validation=str(pred)),
                                                     dict(fold=1, validation=str(pred))])
    assert perfect['over_folds']['dice']['liver']['mean'] == 1.0
    assert perfect['over_folds']['dice']['lesion']['mean'] == 1.0
    worse = h2h.score(str(tmp_path), raw, splits, [dict(fold=0, validation=str(erased)),
                                                   dict(fold=1, validation=str(erased))])
    assert worse['over_folds']['dice']['lesion']['mean'] == 0.0
    assert 0.9 < worse['over_folds']['dice']['liver']['mean'] < 1
    speed = dict(s_per_iter=1.0)
    h2h.print_report(dict(budget=dict(iterations=250, batch=2, patch=[20, 56, 56], threads=2), systems=dict(
        nnunet=dict(summary=perfect, wall_s=100.0, peak_rss_mib=900.0, speed=speed),
        denseunet3d=dict(summary=worse, wall_s=150.0, peak_rss_mib=800.0, speed=speed))))
    out = capsys.readouterr().out
    assert 'budget: 250 iterations x batch 2 x patch [20, 56, 56] (500 samples), 2 CPU threads' in out
    assert '| denseunet3d |' in out and '| 150 | 1.50x | 800 |' in out and '100.00 ± 0.00' in out


def test_volume_prediction_benchmark_compares_labels_and_memory(capsys):
    """benchmark.py --volume-prediction at a small size: densedet's bounded path and MONAI's give the
    same labels; a run whose floor does not fit is reported, not started (nnU-Net needs its venv)."""
    report = benchmark.main(['--volume-prediction', '--shape', '12', '40', '40', '--roi', '8', '16', '16',
                             '--classes', '4', '--systems', 'densedet', 'monai', '--threads', '1'])
    assert report['densedet/4']['same_as_monai'] == 1.0
    assert report['densedet/4']['seconds'] > 0 and report['monai/4']['peak_gib'] >= 0
    assert '| 4 | densedet |' in capsys.readouterr().out
    bench = load_script('tools/analysis/bench_volume_prediction.py')
    assert bench.floor_gib('monai', 117, (300, 512, 512), (48, 160, 160)) == pytest.approx(34.6, abs=0.1)
    assert bench.floor_gib('densedet', 117, (300, 512, 512), (48, 160, 160)) == pytest.approx(5.48, abs=0.01)


def test_head_to_head_ablations_chain_configs(tmp_path):
    """benchmark.py --crossval-nnunet's ablations: SYSTEM+a+b is a chain of configs, each on the one before."""
    import argparse

    import torch
    from mmengine.config import Config
    crossval = load_script('tools/analysis/benchmark_crossval_nnunet.py')
    args = argparse.Namespace(epochs=1, workers=1)
    arch = dict(features_per_stage=[32, 64, 128, 256], strides=[[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]],
                kernel_sizes=[[1, 3, 3]] + [[3, 3, 3]] * 3)
    plan = dict(patch_size=[20, 56, 56], batch_size=2, architecture=dict(arch_kwargs=arch))
    cfg = Config.fromfile(crossval.densedet_config(args, str(tmp_path), 'denseunet3d+instnorm+adamw+ce', plan))
    assert cfg.model.backbone.norm_cfg.type == cfg.model.decode_head.norm_cfg.type == 'IN3d'
    assert cfg.optim_wrapper.optimizer.type == 'AdamW' and cfg.param_scheduler[1].end == 250
    assert cfg.model.losses[0].avg_non_ignore and cfg.train_cfg.max_iters == 250
    cfg = Config.fromfile(crossval.densedet_config(args, str(tmp_path), 'denseunet3d+slimdecoder', plan))
    assert cfg.model.decode_head.up_channels == (504, 224, 192, 64, 32)
    # UNet++ with nnU-Net's planned widths and strides: no padding of the 20 x 56 x 56 patch
    cfg = Config.fromfile(crossval.densedet_config(args, str(tmp_path), 'unetpp3d+plantopology', plan))
    assert cfg.model.backbone.channels == cfg.model.decode_head.in_channels == (32, 64, 128, 256)
    assert cfg.model.decode_head.strides == [(1, 2, 2), (2, 2, 2), (2, 2, 2)]
    assert cfg.model.data_preprocessor.size_divisor == (4, 8, 8)
    assert cfg.model.backbone.kernel_sizes == cfg.model.decode_head.kernel_sizes == [(1, 3, 3)] + [(3, 3, 3)] * 3
    # the slices kept by the stem and nnU-Net's first stage as a full-resolution skip, in one forward pass
    system = 'denseunet3d+anisostem+fullresskip+slimdecoder3+fullreskernel'
    cfg = Config.fromfile(crossval.densedet_config(args, str(tmp_path), system, plan))
    assert cfg.model.backbone.input_skip == dict(out_channels=32, kernel_size=(1, 3, 3))
    assert cfg.model.decode_head.up_channels == (504, 224, 128, 64, 32)
    assert cfg.model.decode_head.kernel_sizes == [3, 3, 3, 3, (1, 3, 3)]
    from mmengine.registry import init_default_scope

    from densedet.registry import MODELS
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model).eval()
    assert model.backbone.out_channels == tuple(cfg.model.decode_head.in_channels)
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(1, 1, 20, 64, 64))
        logits = model.decode_head(feats)
    # every slice through the stem, the input's resolution straight from the decoder (no resizing)
    assert [tuple(f.shape[2:]) for f in feats[:3]] == [(20, 64, 64), (20, 32, 32), (10, 16, 16)]
    assert tuple(logits.shape) == (1, 3, 20, 64, 64)
    with pytest.raises(SystemExit, match="unknown ablation 'deep' in 'denseunet3d\\+deep'"):
        crossval.densedet_config(args, str(tmp_path), 'denseunet3d+deep', plan)


def test_memory_traffic_counts_reads_and_writes_and_skips_views():
    import torch
    bench_paper_claims = load_script('tools/analysis/bench_paper_claims.py')
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    x = torch.randn(1, 3, 10, 10)
    # the conv reads its input and weight, writes its output (4 bytes per float)
    assert bench_paper_claims.memory_traffic(lambda: conv(x)) == 4 * (3 * 100 + 8 * 3 * 9 + 8 * 100)
    assert bench_paper_claims.memory_traffic(lambda: x.view(3, 100).t()) == 0  # views move no data
    # a concatenation reads both parts and writes the whole: dense connectivity's own traffic
    assert bench_paper_claims.memory_traffic(lambda: torch.cat([x, x], 1)) == 4 * (300 + 300 + 600)


def test_paper_claims_table_runs_at_a_small_size(capsys):
    args = benchmark.build_parser().parse_args(['--paper-claims', '--pairs', 'hardnet,csp', '--size', '32',
                                                '--rounds', '1', '--iters', '1', '--threads', '1'])
    bench_paper_claims = load_script('tools/analysis/bench_paper_claims.py')
    rows = bench_paper_claims.measure(args)['rows']
    assert [(r['first'], r['second']) for r in rows] == [('HarDNet-68', 'ResNet-50'),
                                                         ('CSPDenseNet-201', 'DenseNet-201')]
    for r in rows:
        assert r['time_ratio'] > 0 and r['traffic_ratio'] > 0
    # CSPDenseNet-201: fewer parameters and MACs than DenseNet-201, by construction
    assert rows[1]['params_ratio'] == pytest.approx(14_681_083 / 18_092_928)
    assert rows[1]['macs_ratio'] < 0.95
    bench_paper_claims.report(args, dict(rows=rows))
    out = capsys.readouterr().out
    assert '| HarDNet-68 / ResNet-50 | forward | HarDNet: 30 % less inference time | 0.70 |' in out
    with pytest.raises(SystemExit, match=r"--pairs: unknown \['resnet'\]"):
        bench_paper_claims.measure(benchmark.build_parser().parse_args(['--paper-claims', '--pairs', 'resnet']))
