"""Measures how much the Mask R-CNN fixture of ``test_mmcv_ext.py`` moves when only the CPU kernels
change, as on another CPU model of our machine kind: 1 vs 2 threads, oneDNN on vs off, and the
kernels of other instruction sets (``ATEN_CPU_CAPABILITY`` / ``ONEDNN_MAX_CPU_ISA``: AVX2, SSE4.1,
what a CPU without AVX-512 runs). The test's tolerances are bounded from this spread.

    .venv/bin/python tests/ops/fixture_spread.py

Prints, per quantity (losses, gradient sums, boxes, scores), the largest relative / absolute
difference of each variant from the default (1 thread, oneDNN on, this CPU's instruction set: how
the fixture is computed).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch

# Other CPUs of the kind run other vector kernels: emulated here by capping the instruction set.
ISA_VARIANTS = {
    'AVX2 kernels (ATen and oneDNN)': dict(ATEN_CPU_CAPABILITY='avx2', ONEDNN_MAX_CPU_ISA='AVX2'),
    'SSE4.1 oneDNN kernels': dict(ONEDNN_MAX_CPU_ISA='SSE41'),
}


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def spread(base: dict, other: dict) -> dict:
    out = dict(losses=max(_rel(other['losses'][k], v) for k, v in base['losses'].items()),
               grads=max(_rel(other['grads'][k], v) for k, v in base['grads'].items()))
    worst_grad = max(base['grads'], key=lambda k: _rel(other['grads'][k], base['grads'][k]))
    out['worst_grad'] = worst_grad
    same_labels = all(p['labels'].tolist() == r['labels'].tolist()
                      for p, r in zip(other['predictions'], base['predictions']))
    out['labels_equal'] = same_labels
    if same_labels:
        out['boxes_abs'] = max(float((p['bboxes'] - r['bboxes']).abs().max())
                               for p, r in zip(other['predictions'], base['predictions']))
        out['scores_abs'] = max(float((p['scores'] - r['scores']).abs().max())
                                for p, r in zip(other['predictions'], base['predictions']))
        out['masks_equal'] = all(torch.equal(p['masks'], r['masks'])
                                 for p, r in zip(other['predictions'], base['predictions']))
    return out


def ops_spread(base: dict, other: dict) -> dict:
    """Largest abs difference of the RoIAlign outputs / input gradients and NMS detections."""
    roi = max(float((o[k] - b[k]).abs().max()) for o, b in zip(other['roi_align'], base['roi_align'])
              for k in ('out', 'grad') if b[k].numel())
    nms = max(float((o['dets'] - b['dets']).abs().max()) for o, b in zip(other['nms'], base['nms'])
              if b['dets'].numel())
    keep = all(o['keep'].tolist() == b['keep'].tolist() for o, b in zip(other['nms'], base['nms']))
    return dict(roi_align_abs=roi, nms_dets_abs=nms, nms_keep_equal=keep)


def run(threads: int, onednn: bool) -> dict:
    """Every fixture case computed in this process with ``threads`` threads, oneDNN on / off."""
    from mmcv_ops_reference import detector_case, nms_cases, roi_align_cases
    torch.set_num_threads(threads)
    with torch.backends.mkldnn.flags(enabled=onednn):
        return dict(roi_align=roi_align_cases(), nms=nms_cases(), **detector_case())


def run_with_env(env: dict) -> dict:
    """Every fixture case computed in a fresh process with ``env`` (the instruction-set caps are read
    when torch / oneDNN start)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'case.pt')
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), '--case', out],
                              env=dict(os.environ, **env), capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        return torch.load(out, weights_only=False)


def main():
    import logging

    import densedet  # noqa: F401  (registers the models)
    logging.disable(logging.INFO)  # init_weights reports every parameter
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--case', help=argparse.SUPPRESS)  # one default run into this file (run_with_env)
    args = parser.parse_args()
    if args.case:
        torch.save(run(1, True), args.case)
        return
    base = run(1, True)
    variants = [(name, lambda t=threads, o=onednn: run(t, o)) for name, threads, onednn in
                (('2 threads', 2, True), ('oneDNN off', 1, False), ('oneDNN off, 2 threads', 2, False))]
    variants += [(name, lambda e=env: run_with_env(e)) for name, env in ISA_VARIANTS.items()]
    for name, compute in variants:
        result = compute()
        print(f'{name}: {spread(base, result)} {ops_spread(base, result)}')


if __name__ == '__main__':
    main()
