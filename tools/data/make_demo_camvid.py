"""Generates a small procedural dataset in CamVid's SegNet-tutorial layout.

    python tools/data/make_demo_camvid.py [--out data/camvid_demo/CamVid] [--seed 0]

Layout: ``{train,val,test}/*.png`` with ``{train,val,test}annot/*.png`` of the same names; labels
are CamVid's 11 class indices and 11 for void. The scenes are those of
``make_demo_ade20k.py`` (sky, buildings, road, trees, cars, people, indoor wall/floor) with the
ADE20K classes mapped to CamVid's (grass and floor become sidewalk, unlabelled blobs void), plus thin poles:
not photographs, just learnable in minutes. Output is identical for the same ``--seed``.
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np
from make_demo_ade20k import BUILDING, CAR, FLOOR, GRASS, PERSON, ROAD, SKY, TREE, WALL, make_scene

VOID, POLE = 11, 2
# ADE20K index -> CamVid index (sky 0, building 1, pole 2, road 3, sidewalk 4, tree 5, ..., car 8, pedestrian 9)
ADE_TO_CAMVID = {SKY: 0, BUILDING: 1, WALL: 1, ROAD: 3, FLOOR: 4, GRASS: 4, TREE: 5, CAR: 8, PERSON: 9}


def make_camvid_scene(rng, height: int, width: int):
    img, ade = make_scene(rng, height, width)
    label = np.full(ade.shape, VOID, np.uint8)
    for src, dst in ADE_TO_CAMVID.items():
        label[ade == src] = dst
    for _ in range(rng.integers(0, 3)):  # poles: thin grey vertical bars
        x0, top = int(rng.integers(0, width - 3)), int(rng.integers(0, height // 2))
        img[top:, x0:x0 + 3] = (170, 170, 160)
        label[top:, x0:x0 + 3] = POLE
    return img, label


def generate(out: str, num_train: int = 24, num_val: int = 6, num_test: int = 6, height: int = 96,
             width: int = 128, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    for split, count in (('train', num_train), ('val', num_val), ('test', num_test)):
        os.makedirs(osp.join(out, split), exist_ok=True)
        os.makedirs(osp.join(out, split + 'annot'), exist_ok=True)
        for i in range(count):
            img, label = make_camvid_scene(rng, height, width)
            name = f'demo_{split}_{i:04d}.png'
            cv2.imwrite(osp.join(out, split, name), img)
            cv2.imwrite(osp.join(out, split + 'annot', name), label)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/camvid_demo/CamVid')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    generate(args.out, seed=args.seed)
    print(f'demo CamVid data written to {args.out}')


if __name__ == '__main__':
    main()
