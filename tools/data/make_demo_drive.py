"""Generates a small procedural dataset in mmseg's DRIVE layout (retinal-vessel-like images).

    python tools/data/make_demo_drive.py [--out data/drive_demo/DRIVE] [--seed 0]

Layout (as mmseg's ``tools/dataset_converters/drive.py`` writes it):
``images/{training,validation}/NN.png`` and ``annotations/{training,validation}/NN_manual1.png``
with 0 = background, 1 = vessel. Each image is a reddish fundus disc on black with branching,
tapering dark vessels and noise: not retinal photographs, just the same task structure
(thin foreground structures, heavy class imbalance). Output is identical for the same ``--seed``.
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np


def _vessel(rng, img, label, start, angle, width, depth):
    x, y = start
    for _ in range(int(rng.integers(6, 14))):
        angle += rng.normal(0, 0.35)
        step = rng.uniform(5, 10)
        nx, ny = x + step * np.cos(angle), y + step * np.sin(angle)
        thickness = max(1, int(round(width)))
        cv2.line(img, (int(x), int(y)), (int(nx), int(ny)), (40, 30, 110), thickness)
        cv2.line(label, (int(x), int(y)), (int(nx), int(ny)), 1, thickness)
        x, y = nx, ny
        if depth < 2 and rng.random() < 0.15:
            _vessel(rng, img, label, (x, y), angle + rng.choice([-0.8, 0.8]), width * 0.7, depth + 1)
        width = max(1.0, width * 0.93)


def make_fundus(rng, size: int):
    img = np.zeros((size, size, 3), np.uint8)
    label = np.zeros((size, size), np.uint8)
    centre = size // 2
    cv2.circle(img, (centre, centre), int(size * 0.47), (50, 90, 190), -1)
    disc = (int(centre + rng.integers(-size // 6, size // 6)), int(centre + rng.integers(-size // 8, size // 8)))
    cv2.circle(img, disc, size // 12, (120, 190, 240), -1)  # optic disc
    for _ in range(int(rng.integers(4, 7))):
        _vessel(rng, img, label, disc, rng.uniform(0, 2 * np.pi), rng.uniform(2.5, 4), 0)
    outside = np.zeros((size, size), np.uint8)
    cv2.circle(outside, (centre, centre), int(size * 0.47), 1, -1)
    label[outside == 0] = 0
    noisy = img.astype(np.float32) + rng.normal(0, 10, img.shape)
    noisy[outside == 0] = 0
    return np.clip(noisy, 0, 255).astype(np.uint8), label


def generate(out: str, num_train: int = 16, num_val: int = 4, size: int = 96, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    for split, count in (('training', num_train), ('validation', num_val)):
        os.makedirs(osp.join(out, 'images', split), exist_ok=True)
        os.makedirs(osp.join(out, 'annotations', split), exist_ok=True)
        for i in range(count):
            img, label = make_fundus(rng, size)
            cv2.imwrite(osp.join(out, 'images', split, f'{i + 1:02d}.png'), img)
            cv2.imwrite(osp.join(out, 'annotations', split, f'{i + 1:02d}_manual1.png'), label)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/drive_demo/DRIVE')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    generate(args.out, seed=args.seed)
    print(f'demo DRIVE data written to {args.out}')


if __name__ == '__main__':
    main()
