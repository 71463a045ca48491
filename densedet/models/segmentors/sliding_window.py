"""Sliding-window prediction whose memory does not grow with classes x volume.

MONAI's ``sliding_window_inference`` (and nnU-Net's predictor) accumulate the logits of the whole
volume before the argmax: ``K x D x H x W`` floats, 37 GB for 117 classes on a 512 x 512 x 300 CT.
Here the windows are visited slab by slab along D (MONAI's window grid, its Gaussian map and its
order, so the sums agree to float rounding), the weighted logits live in a ring buffer one window deep, and a
slab is handed on as soon as no later window touches it. :class:`SlabLabeller` resizes each slab to
the case's original grid (trilinear, the same arithmetic as ``F.interpolate``, one output slice at
a time) and turns it into labels; the logits of the whole case are kept only when asked for.

Peak memory: ``K x roi_D x H x W`` floats for the ring buffer + the labels + (opt-in) the logits.
No library offers slab-wise blending with on-the-fly argmax for arbitrary resizing (MONAI's
``buffer_steps`` still allocates the whole float32 output), hence the hand-written part.
"""
import itertools
import math
import os
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from densedet.errors import BadInputError

Slab = Tuple[int, torch.Tensor]  # (first D index, logits (K, n, H, W))


def mirror_flip_axes(mirror_axes: Sequence[int]) -> List[List[int]]:
    """Every non-empty combination of the spatial ``mirror_axes`` (0-2) as tensor dims (2-4)."""
    axes = sorted(set(int(a) for a in mirror_axes))
    if any(a not in (0, 1, 2) for a in axes):
        raise BadInputError(f'mirror axes are the spatial axes 0 (D), 1 (H), 2 (W); got {list(mirror_axes)}')
    return [[a + 2 for a in combo] for n in range(1, len(axes) + 1) for combo in itertools.combinations(axes, n)]


def window_grid(image_size: Sequence[int], roi_size: Sequence[int], overlap: float) -> list:
    """MONAI's windows (``dense_patch_slices``, D-major): ``int(roi * (1 - overlap))`` apart, the
    last one flush with the border; one window along an axis the size of the window."""
    from monai.data.utils import dense_patch_slices
    interval = [r if r == s else max(int(r * (1 - overlap)), 1) for r, s in zip(roi_size, image_size)]
    return dense_patch_slices(tuple(image_size), tuple(roi_size), tuple(interval))


def _ring(start: int, stop: int, depth: int) -> Iterator[Tuple[slice, slice]]:
    """``(offset within [start, stop), ring positions)`` pieces of global D indices ``[start, stop)``."""
    pos = start
    while pos < stop:
        r = pos % depth
        n = min(stop - pos, depth - r)
        yield slice(pos - start, pos - start + n), slice(r, r + n)
        pos += n


def blended_slabs(inputs: torch.Tensor, predictor: Callable[[torch.Tensor], torch.Tensor],
                  roi_size: Optional[Sequence[int]] = None, overlap: float = 0.5, sw_batch_size: int = 1,
                  mode: str = 'gaussian', sigma_scale: float = 0.125, slab_depth: int = 4) -> Iterator[Slab]:
    """Gaussian-blended logits of one case ``(1, C, D, H, W)``, yielded slab by slab along D in
    order as ``(d_start, logits (K, n, H, W))``: MONAI's ``sliding_window_inference`` with these
    arguments (to float rounding) (an input smaller than the window is padded
    on both sides with zeros and the padding cropped off), without ever holding the whole volume.
    Slabs are at most ``slab_depth`` slices deep."""
    from monai.data.utils import compute_importance_map
    if inputs.shape[0] != 1:
        raise ValueError(f'blended_slabs takes one case (1, C, D, H, W), got batch {inputs.shape[0]}')
    if not 0 <= overlap < 1:
        raise ValueError(f'overlap must be in [0, 1), got {overlap}')
    size = tuple(inputs.shape[2:])
    roi = tuple(int(r) for r in (roi_size or size))
    pad = [(max(r - s, 0) // 2, max(r - s, 0) - max(r - s, 0) // 2) for r, s in zip(roi, size)]
    if any(a or b for a, b in pad):
        inputs = F.pad(inputs, [p for a_b in reversed(pad) for p in a_b])
    image = tuple(inputs.shape[2:])
    windows = window_grid(image, roi, overlap)
    weight = compute_importance_map(roi, mode=mode, sigma_scale=sigma_scale, device=inputs.device,
                                    dtype=torch.float32)
    depth = roi[0]
    acc, wsum = None, torch.zeros((depth, ) + image[1:], dtype=torch.float32, device=inputs.device)
    crop_hw = (slice(pad[1][0], pad[1][0] + size[1]), slice(pad[2][0], pad[2][0] + size[2]))

    def flush(start: int, stop: int) -> Iterator[Slab]:
        # the part of [start, stop) inside the unpadded case, normalised a few slices at a time (a
        # slab of the whole step would be K x step x H x W), then the ring cleared
        lo, hi = max(start, pad[0][0]), min(stop, pad[0][0] + size[0])
        for first in range(lo, hi, slab_depth):
            last = min(first + slab_depth, hi)
            slab = acc.new_empty((acc.shape[0], last - first) + image[1:])
            for out, ring in _ring(first, last, depth):
                slab[:, out] = acc[:, ring] / wsum[ring]
            yield first - pad[0][0], slab[(slice(None), slice(None)) + crop_hw]
        for _, ring in _ring(start, stop, depth):
            acc[:, ring] = 0
            wsum[ring] = 0

    done = 0  # D indices below this are complete and handed on
    for first in range(0, len(windows), sw_batch_size):
        batch = windows[first:first + sw_batch_size]
        logits = predictor(torch.cat([inputs[(slice(None), slice(None)) + tuple(w)] for w in batch]))
        if acc is None:
            acc = torch.zeros((logits.shape[1], depth) + image[1:], dtype=torch.float32, device=inputs.device)
        for w, out in zip(batch, logits):
            start = int(w[0].start)
            if start > done:  # windows come D-major: nothing later touches [done, start)
                yield from flush(done, start)
                done = start
            plane = (slice(None), ) + tuple(w[1:])
            for part, ring in _ring(start, start + depth, depth):
                acc[(slice(None), ring) + plane[1:]].addcmul_(out[:, part], weight[part])  # no window-size temporary
                wsum[(ring, ) + plane[1:]] += weight[part]
    yield from flush(done, image[0])


def _source_index(out_size: int, in_size: int) -> list:
    """``(i0, i1, lambda)`` per output index of ``F.interpolate(..., align_corners=False)``."""
    scale = in_size / out_size
    table = []
    for z in range(out_size):
        src = max(scale * (z + 0.5) - 0.5, 0.0)
        i0 = min(int(math.floor(src)), in_size - 1)
        table.append((i0, min(i0 + 1, in_size - 1), src - i0))
    return table


class SlabLabeller:
    """Collects the slabs of one case into labels on its original grid.

    Args:
        shape: the case's grid inside the slabs (``img_shape``: the preprocessor's padding is
            cropped off).
        out_shape: the grid of the labels (``ori_shape``); each output slice is interpolated along
            D from its two source slices, then bilinearly in-plane, as ``resize_logits`` does.
        to_labels: ``(K, n, H, W)`` logits -> ``(n, H, W)`` labels.
        keep_logits: also keep the logits of the whole case on ``out_shape`` (float32), after
            checking that they fit in memory.
        slices_per_step: output slices resized at once (bounds the temporary memory).
    """

    def __init__(self, shape: Sequence[int], out_shape: Sequence[int], to_labels: Callable,
                 keep_logits: bool = False, slices_per_step: int = 4):
        self.shape, self.out_shape = tuple(shape), tuple(out_shape)
        self.to_labels, self.keep_logits, self.step = to_labels, keep_logits, slices_per_step
        self.table = _source_index(self.out_shape[0], self.shape[0])
        self.sources = {}  # source D index -> (K, H, W), only the ones still needed
        self.next_out = 0
        self.labels = self.logits = None

    def add(self, d_start: int, slab: torch.Tensor) -> None:
        slab = slab[:, :, :self.shape[1], :self.shape[2]]
        for i in range(slab.shape[1]):
            if d_start + i < self.shape[0]:
                self.sources[d_start + i] = slab[:, i]
        if self.labels is None:
            self.labels = torch.empty(self.out_shape, dtype=torch.long, device=slab.device)
            if self.keep_logits:
                self.logits = allocate_logits(slab.shape[0], self.out_shape, slab.device)
        self._emit()

    def _emit(self) -> None:
        ready = []
        while self.next_out < len(self.table) and self.table[self.next_out][1] in self.sources:
            ready.append(self.next_out)
            self.next_out += 1
        for first in range(0, len(ready), self.step):
            zs = ready[first:first + self.step]
            # along D: (1 - l) * S[i0] + l * S[i1]; then in-plane, output slices as the batch
            planes = torch.stack([self.sources[i0] if lam == 0 else
                                  torch.lerp(self.sources[i0], self.sources[i1], lam)
                                  for i0, i1, lam in (self.table[z] for z in zs)])
            if tuple(planes.shape[2:]) != self.out_shape[1:]:
                planes = F.interpolate(planes, size=self.out_shape[1:], mode='bilinear', align_corners=False)
            logits = planes.transpose(0, 1)  # (K, n, H, W), a view
            self.labels[zs[0]:zs[-1] + 1] = self.to_labels(logits)
            if self.logits is not None:
                self.logits[:, zs[0]:zs[-1] + 1] = logits
            del planes, logits
        needed = self.table[self.next_out][0] if self.next_out < len(self.table) else self.shape[0]
        for i in [i for i in self.sources if i < needed]:
            del self.sources[i]

    def result(self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        if self.next_out != len(self.table):
            raise RuntimeError(f'slabs ended at output slice {self.next_out} of {len(self.table)}')
        return self.labels, self.logits


def available_memory(device: torch.device) -> Optional[int]:
    """Free bytes on ``device`` (``MemAvailable`` on Linux for the CPU), None when unknown."""
    if device.type == 'cuda':
        return torch.cuda.mem_get_info(device)[0]
    if device.type == 'cpu' and os.path.isfile('/proc/meminfo'):
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    return None


def allocate_logits(num_classes: int, shape: Sequence[int], device: torch.device) -> torch.Tensor:
    """The float32 logits of a whole case, or one clear error when they cannot fit."""
    need = num_classes * math.prod(shape) * 4
    free = available_memory(device)
    if free is not None and need > 0.9 * free:
        raise BadInputError(
            f'keeping the probabilities of {num_classes} classes at {tuple(shape)} needs {need / 2**30:.1f} GiB '
            f'(float32) but {free / 2**30:.1f} GiB are free on {device}: predict labels only (no probability '
            'output / ensemble), or fewer classes per model')
    return torch.empty((num_classes, ) + tuple(shape), dtype=torch.float32, device=device)
