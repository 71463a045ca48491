"""densedet/ops/mmcv_ext.py: mmcv's RoIAlign / NMS / soft-NMS served by torchvision, compared with
outputs recorded from mmcv's compiled ops; how ``import mmcv._ext`` finds it (hook, in-process
finder, a compiled extension winning); the errors for ops it does not serve."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from densedet.ops import mmcv_ext

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OPS_FILE = osp.join(ROOT, 'densedet', 'ops', 'mmcv_ext.py')
torchvision_ops = pytest.mark.skipif(mmcv_ext.backend() != 'torchvision',
                                     reason='mmcv._ext is compiled here: these check the torchvision stand-in')


@pytest.fixture(scope='module')
def reference():
    from mmcv_ops_reference import REFERENCE
    return torch.load(REFERENCE, weights_only=True)


@pytest.fixture(scope='module')
def computed():
    from mmcv_ops_reference import compute
    return compute()


# Tolerances, from the spread measured by tests/ops/fixture_spread.py (2026-12-06): the same
# computation with 1 vs 2 threads, oneDNN on / off, and the AVX2 / SSE4.1 kernels a CPU without
# AVX-512 runs (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA). RoIAlign forward / input-gradient and NMS stay
# bit-identical (scalar kernels); soft-NMS scores differ from compiled mmcv by float32 rounding of exp
# (6e-8). The Mask R-CNN step does not: its convolutions sum in another order, so losses move by up to
# 1.2e-6 relative (SSE4.1), gradient sums by up to 1.2e-4 (backbone.stem.1.bias; another CPU of our kind
# gave 6e-5 on backbone.stem.0.weight), scores by 4.5e-7 and boxes by 4.6e-5 px; mask pixels never
# changed. The detector bounds below are 6-10x those.
@torchvision_ops
def test_roi_align_matches_compiled_mmcv(reference, computed):
    from mmcv_ops_reference import ROI_ALIGN_CASES
    assert len(computed['roi_align']) == len(reference['roi_align']) == len(ROI_ALIGN_CASES) + 1
    for case, ours, ref in zip(ROI_ALIGN_CASES + ['empty'], computed['roi_align'], reference['roi_align']):
        torch.testing.assert_close(ours['out'], ref['out'], rtol=1e-6, atol=1e-6, msg=lambda m: f'{case}: {m}')
        torch.testing.assert_close(ours['grad'], ref['grad'], rtol=1e-6, atol=1e-6, msg=lambda m: f'{case}: {m}')
    assert all(r['out'].abs().sum() > 0 for r in reference['roi_align'][:-1])  # real features sampled


@torchvision_ops
def test_nms_batched_nms_and_soft_nms_match_compiled_mmcv(reference, computed):
    assert len(computed['nms']) == len(reference['nms'])
    for i, (ours, ref) in enumerate(zip(computed['nms'], reference['nms'])):
        assert ours['keep'].tolist() == ref['keep'].tolist(), f'case {i}'
        torch.testing.assert_close(ours['dets'], ref['dets'], rtol=1e-6, atol=1e-6, msg=lambda m: f'case {i}: {m}')


def assert_detector_within_bounds(ours, ref):
    assert ours['weights_sum'] == pytest.approx(ref['weights_sum'], rel=1e-9), \
        'the seeded model weights changed: re-record tests/ops/data/mmcv_ops_reference.pt (see mmcv_ops_reference.py)'
    assert ours['losses'] == pytest.approx(ref['losses'], rel=1e-5)
    assert ours['grads'].keys() == ref['grads'].keys() and len(ref['grads']) > 10
    for name in ref['grads']:
        assert ours['grads'][name] == pytest.approx(ref['grads'][name], rel=1e-3, abs=1e-9), name
    for p, r in zip(ours['predictions'], ref['predictions']):
        assert p['labels'].tolist() == r['labels'].tolist()
        torch.testing.assert_close(p['scores'], r['scores'], rtol=0, atol=5e-6)
        torch.testing.assert_close(p['bboxes'], r['bboxes'], rtol=0, atol=3e-4)
        # mask pixels: identical in every variant measured; a pixel whose probability sits within the
        # scores' spread of 0.5 may flip on another CPU, so at most 0.1 % of them may differ
        differ = int((np.unpackbits(p['masks'].numpy()) != np.unpackbits(r['masks'].numpy())).sum())
        assert differ <= 1e-3 * p['masks'].numel() * 8, differ


@torchvision_ops
def test_mask_rcnn_train_step_and_prediction_match_compiled_mmcv(reference, computed):
    assert_detector_within_bounds(computed['detector'], reference['detector'])


@torchvision_ops
def test_mask_rcnn_step_with_another_cpus_kernels_stays_within_the_bounds(reference):
    # the seeded training step and prediction with the AVX2 kernels a CPU without AVX-512 runs: what a
    # machine of our kind with another CPU model computes must stay within the bounds above
    from fixture_spread import ISA_VARIANTS, run_with_env
    other = run_with_env(ISA_VARIANTS['AVX2 kernels (ATen and oneDNN)'])
    assert_detector_within_bounds(other, reference['detector'])


def test_nms_offset_one_is_mmcvs_plus_one_geometry():
    # Two boxes whose IoU is 0.5 with +1 widths and 1/3 without.
    boxes = torch.tensor([[0., 0., 1., 3.], [0., 0., 3., 3.]])
    scores = torch.tensor([0.9, 0.8])
    assert mmcv_ext.nms(boxes, scores, 0.4, offset=0).tolist() == [0, 1]
    assert mmcv_ext.nms(boxes, scores, 0.4, offset=1).tolist() == [0]
    with pytest.raises(ValueError, match='offset'):
        mmcv_ext.nms(boxes, scores, 0.4, offset=2)


@torchvision_ops
def test_unserved_ops_raise_one_clear_error():
    from mmcv.ops import RoIAlign, sigmoid_focal_loss
    with pytest.raises(NotImplementedError, match=r"'sigmoid_focal_loss_forward'.*MMCV_OPS=compiled"):
        sigmoid_focal_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), 2.0, 0.25)
    with pytest.raises(NotImplementedError, match=r"pool_mode='max'.*MMCV_OPS=compiled"):
        RoIAlign(7, 1.0, pool_mode='max')(torch.randn(1, 2, 8, 8), torch.tensor([[0., 1., 1., 6., 6.]]))


@torchvision_ops
def test_cuda_tensors_reach_torchvisions_cuda_kernels():
    if not torch.cuda.is_available():
        pytest.skip('no CUDA device')
    from mmcv.ops import nms, roi_align

    from mmcv_ops_reference import _roi_align_inputs
    feats, rois = _roi_align_inputs(torch.Generator().manual_seed(0))
    x = feats.cuda().requires_grad_(True)
    out = roi_align(x, rois.cuda(), 7, 0.25, 0, 'avg', True)
    out.sum().backward()
    torch.testing.assert_close(out.cpu(), roi_align(feats, rois, 7, 0.25, 0, 'avg', True), rtol=1e-5, atol=1e-5)
    assert x.grad.is_cuda
    boxes = rois[:, 1:].cuda().abs()
    assert nms(boxes, boxes[:, 0], 0.5)[1].is_cuda


def _python(code, *site_dirs):
    """Runs code in a fresh interpreter that sees this environment's packages without running their
    .pth files (-S: no hook of this environment, no densedet), and the given site dirs with theirs."""
    import sysconfig
    prelude = (f'import sys, site; sys.path.append({sysconfig.get_paths()["purelib"]!r})\n'
               + ''.join(f'site.addsitedir({d!r})\n' for d in site_dirs))
    return subprocess.run([sys.executable, '-S', '-c', prelude + code], capture_output=True, text=True, cwd='/',
                          timeout=120)


def test_pth_hook_serves_mmcv_ext_without_importing_densedet(tmp_path):
    site = tmp_path / 'site'
    site.mkdir()
    assert mmcv_ext.install(str(site)) == str(site / mmcv_ext.PTH_NAME)
    code = ('import sys, importlib.util as u\n'
            'spec = u.find_spec("mmcv._ext")\n'
            'print(spec.origin if spec else None, "densedet" in sys.modules)\n')
    out = _python(code, str(site))
    assert out.returncode == 0, out.stderr
    origin, densedet_imported = out.stdout.split()
    compiled = mmcv_ext.backend() == 'compiled'
    assert (origin != OPS_FILE) if compiled else (origin == OPS_FILE)
    assert densedet_imported == 'False'
    assert mmcv_ext.uninstall(str(site)) and not (site / mmcv_ext.PTH_NAME).exists()
    assert mmcv_ext.uninstall(str(site)) is None


def test_hook_of_a_moved_checkout_is_a_no_op(tmp_path):
    (tmp_path / mmcv_ext.PTH_NAME).write_text(mmcv_ext.pth_line(str(tmp_path / 'gone' / 'mmcv_ext.py')))
    out = _python('print("started")', str(tmp_path))
    assert out.returncode == 0 and out.stdout.strip() == 'started' and not out.stderr


def test_a_compiled_extension_wins_over_the_finder(tmp_path):
    # A stand-in mmcv package whose _ext is "compiled": found by the path finder before ours.
    pkg = tmp_path / 'mmcv'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    code = (f'import sys; sys.path.insert(0, {str(tmp_path)!r})\n'
            f'import importlib.util as u; s = u.spec_from_file_location("hook", {OPS_FILE!r})\n'
            'm = u.module_from_spec(s); s.loader.exec_module(m); m.install_finder(); m.install_finder()\n'
            'import mmcv._ext as ext\n'
            'finders = sum(type(f).__name__ == "_TorchvisionOpsFinder" for f in sys.meta_path)\n'
            'print(ext.__file__, m.backend(), finders)\n')
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [OPS_FILE, 'torchvision', '1']  # no compiled ops: ours, finder added once
    (pkg / '_ext.py').write_text('COMPILED = True\n')
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(pkg / '_ext.py'), 'compiled', '1']


def test_status_cli_names_the_backend():
    out = subprocess.run([sys.executable, OPS_FILE, 'status'], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f'mmcv._ext: {mmcv_ext.backend()}'


@torchvision_ops
def test_roi_align_reads_strided_inputs_by_their_strides():
    # mmcv's compiled kernel reads raw NCHW memory (the RDNet channels-last bug); torchvision's
    # reads by strides: a channels-last view gives the same features.
    from mmcv.ops import roi_align

    from mmcv_ops_reference import _roi_align_inputs
    feats, rois = _roi_align_inputs(torch.Generator().manual_seed(0))
    strided = feats.to(memory_format=torch.channels_last)
    assert not strided.is_contiguous()
    torch.testing.assert_close(roi_align(strided, rois, 7, 0.25, 0, 'avg', True),
                               roi_align(feats, rois, 7, 0.25, 0, 'avg', True), rtol=0, atol=0)
