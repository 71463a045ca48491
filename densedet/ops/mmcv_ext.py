"""mmcv's compiled-ops module (``mmcv._ext``) served by torchvision, for mmcv without a native build.

mmcv 2.1.0 ships its C++/CUDA ops in ``mmcv._ext``; ``mmcv-lite`` (the same Python code, no
ops) installs in seconds but ``import mmcv.ops`` then fails. densedet's configs execute only
RoIAlign (average pooling) and NMS of those ops (the two-stage detectors; ``docs/install.md``
lists how that was found), and torchvision ships both kernels for CPU and CUDA. This file
stands in for ``mmcv._ext``:

* ``roi_align_forward`` / ``roi_align_backward`` -> ``torchvision::roi_align`` /
  ``torchvision::_roi_align_backward`` (average pooling; ``pool_mode='max'`` raises);
* ``nms`` -> ``torchvision::nms`` (``offset=1``: boxes grown by one pixel, which is the
  same IoU as mmcv's ``+1`` widths);
* ``softnms`` -> a port of mmcv's CPU soft-NMS loop (linear / gaussian / naive);
* ``get_compiler_version`` / ``get_compiling_cuda_version`` say that no ops were compiled;
* every other name is a function that raises :class:`MissingMMCVOpError` naming the op.

How ``import mmcv.ops`` finds it: :func:`install_finder` appends a finder to the **end** of
``sys.meta_path`` that answers only for ``mmcv._ext`` and loads this file under that name. The
standard path finder runs first, so a compiled ``mmcv/_ext*.so`` (full ``mmcv``) always wins and
this file is never loaded. The finder is installed

* in every interpreter of the environment by a one-line ``densedet-mmcv-ops.pth`` in
  site-packages, written by ``python -m densedet.ops.mmcv_ext install`` (``make setup`` runs it)
  and removed by ``... uninstall``; ``... status`` says which implementation serves the ops;
* in-process by ``import densedet`` (its first statement), for environments without the hook.

The top level imports only the standard library (the ``.pth`` loads this file at interpreter
start-up); torch and torchvision are imported when an op first runs.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys

MODULE = 'mmcv._ext'
PTH_NAME = 'densedet-mmcv-ops.pth'
HOOK_MODULE = '_densedet_mmcv_ext_hook'
SERVED = ('roi_align_forward', 'roi_align_backward', 'nms', 'softnms', 'get_compiler_version',
          'get_compiling_cuda_version')


class MissingMMCVOpError(NotImplementedError):
    """An mmcv op that only mmcv's compiled extension provides. (``mmcv._ext`` is its own module
    object, loaded from this file: catch ``NotImplementedError``, not this class by identity.)"""


def _missing(name):
    def op(*args, **kwargs):
        raise MissingMMCVOpError(
            f"mmcv op '{name}' is not available: mmcv is installed without compiled ops and "
            f"densedet serves only {', '.join(SERVED[:4])} through torchvision. For mmcv's own "
            "compiled ops run `make setup MMCV_OPS=compiled` (see docs/install.md).")
    op.__name__ = name
    return op


def __getattr__(name):
    # mmcv.ops checks hasattr() for every op at import; private names stay missing so that
    # importlib / inspect see an ordinary module.
    if name.startswith('_'):
        raise AttributeError(name)
    return _missing(name)


def get_compiler_version():
    return 'none (mmcv without compiled ops; RoIAlign / NMS from torchvision via densedet)'


def get_compiling_cuda_version():
    return 'not available'


def _check_avg_pool(pool_mode):
    if pool_mode != 1:  # mmcv encodes 'max' as 0, 'avg' as 1
        raise MissingMMCVOpError(
            "RoIAlign with pool_mode='max' is not available: torchvision's roi_align averages. "
            "Use pool_mode='avg' (mmdet's default) or run `make setup MMCV_OPS=compiled`.")


def roi_align_forward(input, rois, output, argmax_y, argmax_x, aligned_height, aligned_width,
                      spatial_scale, sampling_ratio, pool_mode, aligned):
    """Fills ``output`` in place, as mmcv's kernel does."""
    import torch
    _check_avg_pool(pool_mode)
    if rois.numel() == 0:
        return
    out = torch.ops.torchvision.roi_align(input, rois.to(input.dtype), float(spatial_scale),
                                          int(aligned_height), int(aligned_width),
                                          int(sampling_ratio), bool(aligned))
    output.copy_(out)


def roi_align_backward(grad_output, rois, argmax_y, argmax_x, grad_input, aligned_height,
                       aligned_width, spatial_scale, sampling_ratio, pool_mode, aligned):
    """Accumulates into ``grad_input`` (zero-initialised by mmcv), as mmcv's kernel does."""
    import torch
    _check_avg_pool(pool_mode)
    if rois.numel() == 0:
        return
    n, c, h, w = grad_input.shape
    grad = torch.ops.torchvision._roi_align_backward(
        grad_output, rois.to(grad_output.dtype), float(spatial_scale), int(aligned_height),
        int(aligned_width), n, c, h, w, int(sampling_ratio), bool(aligned))
    grad_input.add_(grad)


def _offset_boxes(boxes, offset):
    # mmcv's offset=1 measures widths as x2 - x1 + 1: the same areas and overlaps as x2 + 1.
    if offset == 0:
        return boxes
    if offset != 1:
        raise ValueError(f'nms offset must be 0 or 1, got {offset}')
    return boxes + boxes.new_tensor([0., 0., 1., 1.])


def nms(boxes, scores, iou_threshold, offset=0):
    """Indices of the kept boxes, highest score first (mmcv's contract)."""
    import torch
    if boxes.numel() == 0:
        return boxes.new_zeros(0, dtype=torch.long)
    # mmcv orders boxes with the default (unstable) sort, torchvision with a stable one: equal
    # scores would keep different boxes. Sorting as mmcv does first makes torchvision's stable sort
    # a no-op, so ties resolve as in mmcv.
    order = scores.sort(0, descending=True)[1]
    keep = torch.ops.torchvision.nms(_offset_boxes(boxes, offset)[order], scores[order], float(iou_threshold))
    return order[keep]


def softnms(boxes, scores, dets, iou_threshold, sigma, min_score, method, offset):
    """mmcv's CPU soft-NMS: writes (x1, y1, x2, y2, score) rows into ``dets`` in the order kept and
    returns the kept input indices. ``method``: 0 naive (drop above the threshold), 1 linear,
    2 gaussian."""
    import torch
    if method not in (0, 1, 2):
        raise ValueError(f'softnms method must be 0, 1 or 2, got {method}')
    n = boxes.size(0)
    if n == 0:
        return boxes.new_zeros(0, dtype=torch.long)
    boxes, scores = boxes.clone(), scores.clone()  # reordered in place below
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1 + offset) * (y2 - y1 + offset)
    order = torch.arange(n)
    # Step i swaps the highest remaining score to position i (mmcv's in-place order) and decays
    # the scores of the active boxes after it; boxes below min_score drop out of [0, alive).
    alive = n
    for i in range(n):
        if i >= alive:
            break
        best = i + int(torch.argmax(scores[i:alive]))
        if best != i:
            for t in (boxes, scores, areas, order):
                t[[i, best]] = t[[best, i]]
        rest = slice(i + 1, alive)
        bx = boxes[rest]
        w = (torch.minimum(bx[:, 2], boxes[i, 2]) - torch.maximum(bx[:, 0], boxes[i, 0]) + offset).clamp(min=0)
        h = (torch.minimum(bx[:, 3], boxes[i, 3]) - torch.maximum(bx[:, 1], boxes[i, 1]) + offset).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        if method == 1:
            weight = torch.where(iou >= iou_threshold, 1 - iou, torch.ones_like(iou))
        elif method == 2:
            weight = torch.exp(-(iou * iou) / sigma)
        else:
            weight = (iou < iou_threshold).to(iou.dtype)
        scores[rest] *= weight
        # A box that fell below min_score is overwritten by the last active box, which is then
        # examined at the same place (mmcv's order); simulated on indices, gathered once.
        below = (scores[rest] < min_score).tolist()
        if any(below):
            active = list(range(i + 1, alive))
            pos, end = 0, len(active)
            while pos < end:
                if below[active[pos] - i - 1]:
                    end -= 1
                    active[pos] = active[end]
                else:
                    pos += 1
            idx = torch.tensor(active[:end], dtype=torch.long)
            for t in (boxes, scores, areas, order):
                t[i + 1:i + 1 + end] = t[idx]
            alive = i + 1 + end
    # Every position below `alive` was taken as the maximum of its step.
    dets[:alive, :4] = boxes[:alive]
    dets[:alive, 4] = scores[:alive]
    return order[:alive]


class _TorchvisionOpsFinder(importlib.abc.MetaPathFinder):
    """Answers for ``mmcv._ext`` only; sits after the path finder, so compiled ops win."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != MODULE:
            return None
        return importlib.util.spec_from_file_location(MODULE, os.path.abspath(__file__))


def _finder_installed() -> bool:
    # By class name: the .pth hook, densedet.ops.mmcv_ext and mmcv._ext are separate module objects.
    return any(type(f).__name__ == _TorchvisionOpsFinder.__name__ for f in sys.meta_path)


def install_finder():
    """Makes ``import mmcv._ext`` fall back to this file (idempotent)."""
    if not _finder_installed():
        sys.meta_path.append(_TorchvisionOpsFinder())


def backend():
    """'compiled' (mmcv's own extension), 'torchvision' (this file) or 'missing'."""
    mmcv_spec = importlib.util.find_spec('mmcv')
    if mmcv_spec is None:
        return 'missing'
    compiled = importlib.machinery.PathFinder.find_spec(MODULE, mmcv_spec.submodule_search_locations)
    if compiled is not None:
        return 'compiled'
    return 'torchvision' if _finder_installed() else 'missing'


def pth_line(path=None):
    """The one line of the .pth hook: loads this file by path (without importing densedet, whose
    package import is heavy) and installs the finder; a moved or deleted file is skipped."""
    path = os.path.abspath(path or __file__)
    return (f'import os, importlib.util as u; p = {path!r}; '
            f's = os.path.isfile(p) and u.spec_from_file_location({HOOK_MODULE!r}, p); '
            f'm = s and u.module_from_spec(s); m and (s.loader.exec_module(m), m.install_finder())\n')


def _site_packages():
    import sysconfig
    return sysconfig.get_paths()['purelib']


def install(site_dir=None):
    """Writes the .pth hook into ``site_dir`` (this interpreter's site-packages); returns its path."""
    target = os.path.join(site_dir or _site_packages(), PTH_NAME)
    tmp = f'{target}.tmp'
    with open(tmp, 'w') as f:
        f.write(pth_line())
    os.replace(tmp, target)
    return target


def uninstall(site_dir=None):
    """Removes the .pth hook; returns its path, or None when there was none."""
    target = os.path.join(site_dir or _site_packages(), PTH_NAME)
    if not os.path.exists(target):
        return None
    os.remove(target)
    return target


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(
        prog='python -m densedet.ops.mmcv_ext',
        description="Serve mmcv's RoIAlign / NMS ops from torchvision when mmcv has no compiled ops.")
    parser.add_argument('command', choices=['install', 'uninstall', 'status'])
    parser.add_argument('--site-dir', help="where the .pth goes (default: this Python's site-packages)")
    args = parser.parse_args(argv)
    if args.command == 'install':
        print(f'installed {install(args.site_dir)}')
    elif args.command == 'uninstall':
        removed = uninstall(args.site_dir)
        print(f'removed {removed}' if removed else f'no {PTH_NAME} in {args.site_dir or _site_packages()}')
    else:
        print(f'mmcv._ext: {backend()}')


if __name__ == '__main__':
    main()
