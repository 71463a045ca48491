"""Generates the embedded demo dataset in exact ADE20K layout (procedural scenes).

    python tools/data/make_demo_ade20k.py [--out data/ade20k_demo/ADEChallengeData2016]

Layout: ``images/{training,validation}/*.jpg`` and ``annotations/{training,validation}/*.png``
with ADE20K's raw label values (0 = other/ignored, 1..150 = the SceneParsing classes).
Scenes are procedural, not photographs: a sky band, buildings with windows, road or
grass ground, trees, cars and people, each class drawn with its own colour
distribution and texture plus noise, so a network can learn them in minutes. Only
nine of the 150 classes occur. Output is identical for the same ``--seed``.
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np

# ADE20K SceneParsing class indices (1-based, as stored in the label PNGs).
WALL, BUILDING, SKY, FLOOR, TREE, ROAD, GRASS, PERSON, CAR = 1, 2, 3, 4, 5, 7, 10, 13, 21
# Mean BGR colour per class; textures and noise are added on top.
COLORS = {
    WALL: (150, 160, 175), BUILDING: (90, 100, 140), SKY: (230, 180, 120), FLOOR: (60, 110, 150),
    TREE: (40, 120, 50), ROAD: (95, 95, 95), GRASS: (60, 170, 90), PERSON: (80, 60, 200), CAR: (200, 60, 40)
}


def _paint(img, label, mask, cls, rng, texture=None):
    color = np.array(COLORS[cls], np.float32) + rng.normal(0, 12, 3)
    img[mask] = color
    if texture is not None:
        img[mask] += texture[mask][:, None]
    label[mask] = cls


def make_scene(rng, height, width):
    img = np.zeros((height, width, 3), np.float32)
    label = np.zeros((height, width), np.uint8)
    yy, xx = np.mgrid[:height, :width]
    if rng.random() < 0.25:  # indoor: wall over floor
        horizon = int(height * rng.uniform(0.55, 0.75))
        _paint(img, label, yy < horizon, WALL, rng)
        tiles = 25.0 * (((xx // 16) + (yy // 16)) % 2)
        _paint(img, label, yy >= horizon, FLOOR, rng, tiles)
    else:
        horizon = int(height * rng.uniform(0.35, 0.6))
        gradient = 40.0 * (1 - yy / max(horizon, 1))
        _paint(img, label, yy < horizon, SKY, rng, gradient)
        ground = ROAD if rng.random() < 0.5 else GRASS
        stripes = 30.0 * ((xx // 12) % 2) if ground == ROAD else 0 * xx.astype(np.float32)
        _paint(img, label, yy >= horizon, ground, rng, stripes)
        for _ in range(rng.integers(1, 4)):  # buildings standing on the horizon
            w, h = rng.integers(width // 8, width // 3), rng.integers(height // 6, horizon)
            x0 = rng.integers(0, width - w)
            box = (xx >= x0) & (xx < x0 + w) & (yy >= horizon - h) & (yy < horizon)
            windows = 45.0 * (((xx - x0) % 10 < 5) & ((yy % 12) < 6))
            _paint(img, label, box, BUILDING, rng, windows)
        for _ in range(rng.integers(0, 4)):  # trees
            cx, cy, r = rng.integers(0, width), horizon - rng.integers(0, height // 6), rng.integers(8, 24)
            crown = (xx - cx)**2 + (yy - cy)**2 < r**2
            _paint(img, label, crown, TREE, rng, 20.0 * np.sin(xx * 0.9) * np.cos(yy * 0.9))
        for _ in range(rng.integers(0, 3)):  # cars on the ground
            w, h = rng.integers(24, 48), rng.integers(10, 18)
            x0, y0 = rng.integers(0, width - w), rng.integers(horizon, height - h)
            _paint(img, label, (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h), CAR, rng)
    for _ in range(rng.integers(0, 4)):  # people
        cx, cy = rng.integers(0, width), rng.integers(height // 2, height)
        ry, rx = rng.integers(10, 22), rng.integers(3, 7)
        _paint(img, label, ((xx - cx) / rx)**2 + ((yy - cy) / ry)**2 < 1, PERSON, rng)
    if rng.random() < 0.3:  # an 'other' blob (label 0, ignored by reduce_zero_label)
        cx, cy, r = rng.integers(0, width), rng.integers(0, height), rng.integers(5, 12)
        blob = (xx - cx)**2 + (yy - cy)**2 < r**2
        img[blob] = rng.uniform(0, 255, 3)
        label[blob] = 0
    img += rng.normal(0, 8, img.shape)
    img = cv2.GaussianBlur(img, (3, 3), 0)
    return np.clip(img, 0, 255).astype(np.uint8), label


def generate(out: str, num_train: int = 48, num_val: int = 48, height: int = 192, width: int = 256,
             seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    for split, count in (('training', num_train), ('validation', num_val)):
        img_dir, ann_dir = osp.join(out, 'images', split), osp.join(out, 'annotations', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for i in range(count):
            img, label = make_scene(rng, height, width)
            name = f'ADE_demo_{split[0]}_{i:05d}'
            cv2.imwrite(osp.join(img_dir, name + '.jpg'), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(osp.join(ann_dir, name + '.png'), label)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/ade20k_demo/ADEChallengeData2016')
    parser.add_argument('--num-train', type=int, default=48)
    parser.add_argument('--num-val', type=int, default=48)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    generate(args.out, args.num_train, args.num_val, seed=args.seed)
    print(f'demo ADE20K data written to {args.out}')


if __name__ == '__main__':
    main()
