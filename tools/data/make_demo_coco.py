"""Generates the embedded demo dataset in COCO instance-segmentation format (procedural images).

    python tools/data/make_demo_coco.py [--out data/coco_demo] [--seed 0]

Layout (as COCO 2017): ``{train2017,val2017}/*.png`` and
``annotations/instances_{train2017,val2017}.json`` with ``images``, ``annotations``
(polygon ``segmentation``, ``bbox`` in xywh, ``area``, ``iscrowd``) and ``categories``.
Three categories with non-contiguous COCO ids (disc 1, box 3, triangle 7) on a textured,
noisy background; every instance is drawn from the exact polygon stored in the json, so
masks and annotations agree pixel for pixel. About one training image in five also holds
a crowd region (a cluster of small discs annotated once, ``iscrowd=1`` with an RLE mask),
which CocoMetric ignores in matching as on real COCO. Output is identical for the same
``--seed``.
"""
import argparse
import json
import os
import os.path as osp

import cv2
import numpy as np
from pycocotools import mask as mask_utils

CATEGORIES = [dict(id=1, name='disc', supercategory='shape'), dict(id=3, name='box', supercategory='shape'),
              dict(id=7, name='triangle', supercategory='shape')]
CLASSES = tuple(c['name'] for c in CATEGORIES)


def _polygon(rng, kind: str, cx: float, cy: float, size: float) -> np.ndarray:
    """Vertices (N, 2) of a shape of about ``size`` pixels across, randomly rotated."""
    angle = rng.uniform(0, 2 * np.pi)
    if kind == 'disc':
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        radii = np.full_like(t, size / 2)
    elif kind == 'box':
        t = np.array([0.25, 0.75, 1.25, 1.75]) * np.pi
        radii = np.full_like(t, size / 2 * np.sqrt(2) * 0.8)
    else:
        t = np.array([0.5, 0.5 + 2 / 3, 0.5 + 4 / 3]) * np.pi
        radii = np.full_like(t, size * 0.6)
    return np.stack([cx + radii * np.cos(t + angle), cy + radii * np.sin(t + angle)], axis=1)


def _background(rng, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    base = rng.uniform(60, 190, 3)
    img = np.empty((height, width, 3), np.float32)
    for c in range(3):
        img[..., c] = base[c] + 25 * np.sin(xx * rng.uniform(0.02, 0.1) + yy * rng.uniform(0.02, 0.1) + c)
    return img


def make_image(rng, height: int, width: int, crowd: bool):
    """One image and its annotations (dicts without ids)."""
    img = _background(rng, height, width)
    anns, occupied = [], np.zeros((height, width), bool)
    for _ in range(rng.integers(1, 5)):
        for _attempt in range(20):  # place without overlap, so every polygon is the visible mask
            kind = CLASSES[rng.integers(len(CLASSES))]
            size = rng.uniform(28, 64)
            cx, cy = rng.uniform(size / 2 + 2, width - size / 2 - 2), rng.uniform(size / 2 + 2, height - size / 2 - 2)
            poly = _polygon(rng, kind, cx, cy, size)
            mask = np.zeros((height, width), np.uint8)
            cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
            if not (mask.astype(bool) & occupied).any():
                break
        else:
            continue
        occupied |= mask.astype(bool)
        color = {'disc': (40, 40, 220), 'box': (220, 60, 40), 'triangle': (40, 200, 60)}[kind]
        img[mask.astype(bool)] = np.array(color, np.float32) + rng.normal(0, 15, 3)
        x0, y0 = poly.min(0)
        x1, y1 = poly.max(0)
        anns.append(dict(category_id=next(c['id'] for c in CATEGORIES if c['name'] == kind),
                         segmentation=[np.round(poly, 1).ravel().tolist()], area=float(mask.sum()),
                         bbox=[round(float(x0), 1), round(float(y0), 1), round(float(x1 - x0), 1),
                               round(float(y1 - y0), 1)], iscrowd=0))
    if crowd:
        crowd_mask = np.zeros((height, width), np.uint8)
        cx, cy = rng.uniform(20, width - 20), rng.uniform(20, height - 20)
        for _ in range(8):
            x, y = int(cx + rng.normal(0, 8)), int(cy + rng.normal(0, 8))
            cv2.circle(crowd_mask, (x, y), 3, 1, -1)
        crowd_mask &= ~occupied
        if crowd_mask.any():
            img[crowd_mask.astype(bool)] = (40, 40, 220)
            rle = mask_utils.encode(np.asfortranarray(crowd_mask))
            x, y, w, h = mask_utils.toBbox(rle).tolist()
            rle['counts'] = rle['counts'].decode('ascii')
            anns.append(dict(category_id=1, segmentation=rle, area=float(crowd_mask.sum()), bbox=[x, y, w, h],
                             iscrowd=1))
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), anns


def generate(out: str, num_train: int = 64, num_val: int = 16, height: int = 160, width: int = 192,
             seed: int = 0) -> dict:
    """Writes the dataset under ``out``; returns the number of images and annotations per split."""
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(out, 'annotations'), exist_ok=True)
    counts = {}
    ann_id = 1
    for split, num in (('train2017', num_train), ('val2017', num_val)):
        os.makedirs(osp.join(out, split), exist_ok=True)
        images, annotations = [], []
        for i in range(num):
            img_id = 1000 * (split == 'val2017') + i + 1
            img, anns = make_image(rng, height, width, crowd=split == 'train2017' and i % 5 == 0)
            name = f'{img_id:012d}.png'
            cv2.imwrite(osp.join(out, split, name), img)
            images.append(dict(id=img_id, file_name=name, height=height, width=width))
            for ann in anns:
                annotations.append(dict(id=ann_id, image_id=img_id, **ann))
                ann_id += 1
        with open(osp.join(out, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(info=dict(description='densedet procedural COCO-format demo', version='1.0'),
                           licenses=[], images=images, annotations=annotations, categories=CATEGORIES), f)
        counts[split] = dict(images=len(images), annotations=len(annotations))
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/coco_demo')
    parser.add_argument('--num-train', type=int, default=64)
    parser.add_argument('--num-val', type=int, default=16)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    counts = generate(args.out, args.num_train, args.num_val, seed=args.seed)
    print(f'wrote {args.out}: {counts}')


if __name__ == '__main__':
    main()
