"""Generates a small synthetic CT task in Medical Segmentation Decathlon layout.

    python tools/data/make_demo_msd.py [--out data/msd_demo/Task03_Liver] [--seed 0]

Layout: ``dataset.json`` (MSD keys: ``labels`` 0 background / 1 liver / 2 tumour, ``modality``
0 CT, ``training`` and ``test`` lists), ``imagesTr/liver_N.nii.gz``, ``labelsTr/liver_N.nii.gz``,
``imagesTs/liver_N.nii.gz``. Each case is a CT-like volume in Hounsfield units: air
(-1000) around an elliptic body (soft tissue ~40 HU, noise), a liver-like ellipsoid
(~110 HU) holding one to three tumour-like spheres (~35 HU). Voxels are anisotropic
(0.9-1.1 mm in plane, 2.5 mm slices) and the affines are not the identity (LPS-style axis
flips, an in-plane rotation, an origin), so the geometry bookkeeping is exercised.
Not anatomy; learnable in minutes. Output is identical for the same ``--seed``.
"""
import argparse
import json
import os
import os.path as osp

import numpy as np

from densedet.fileio import write_nifti

SHAPE_DHW = (24, 56, 56)  # slices, rows, columns


def make_affine(rng, spacing_dhw) -> np.ndarray:
    angle = rng.uniform(-0.3, 0.3)
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    flips = np.diag([-1.0, -1.0, 1.0])  # LPS-style storage seen from RAS
    affine = np.eye(4)
    affine[:3, :3] = flips @ rotation @ np.diag(spacing_dhw[::-1])  # columns = file axes (i, j, k)
    affine[:3, 3] = rng.uniform(-150, 150, size=3)
    return affine


def ellipsoid(grid, centre, radii) -> np.ndarray:
    return sum(((g - c) / r)**2 for g, c, r in zip(grid, centre, radii)) <= 1.0


def make_case(rng):
    """One (image HU float32, label uint8, spacing) triple in ``(D, H, W)`` order."""
    d, h, w = SHAPE_DHW
    spacing = (2.5, float(rng.uniform(0.9, 1.1)), float(rng.uniform(0.9, 1.1)))
    grid = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing='ij')
    body = ellipsoid(grid[1:], (h / 2 + rng.uniform(-2, 2), w / 2 + rng.uniform(-2, 2)),
                     (h * rng.uniform(0.38, 0.45), w * rng.uniform(0.42, 0.48)))
    body = np.broadcast_to(body, SHAPE_DHW)
    liver_centre = (d / 2 + rng.uniform(-3, 3), h * rng.uniform(0.4, 0.55), w * rng.uniform(0.35, 0.5))
    liver_radii = (d * rng.uniform(0.3, 0.4), h * rng.uniform(0.18, 0.25), w * rng.uniform(0.2, 0.27))
    liver = ellipsoid(grid, liver_centre, liver_radii) & body
    label = liver.astype(np.uint8)
    for _ in range(rng.integers(1, 4)):
        voxels = np.argwhere(liver)
        centre = voxels[rng.integers(len(voxels))]
        radius_mm = rng.uniform(4, 8)
        radii = tuple(radius_mm / s for s in spacing)
        label[ellipsoid(grid, centre, radii) & liver] = 2
    image = np.full(SHAPE_DHW, -1000.0, np.float32)
    image[body] = 40.0
    image[label == 1] = 110.0
    image[label == 2] = 35.0
    image += rng.normal(0, 12, size=SHAPE_DHW).astype(np.float32)
    return image, label, spacing


def write_case(rng, out: str, split: str, name: str, with_label: bool) -> dict:
    image, label, spacing = make_case(rng)
    affine = make_affine(rng, spacing)
    entry = {'image': f'./{split}/{name}.nii.gz'}
    write_nifti(image, osp.join(out, split, f'{name}.nii.gz'), affine, dtype=np.int16)
    if with_label:
        entry['label'] = f'./labelsTr/{name}.nii.gz'
        write_nifti(label, osp.join(out, 'labelsTr', f'{name}.nii.gz'), affine, dtype=np.uint8)
    return entry


def generate(out: str, num_train: int = 10, num_test: int = 2, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    training = [write_case(rng, out, 'imagesTr', f'liver_{i}', True) for i in range(num_train)]
    test = [write_case(rng, out, 'imagesTs', f'liver_{num_train + i}', False)['image'] for i in range(num_test)]
    description = {
        'name': 'SyntheticLiver',
        'description': 'densedet synthetic CT task (tools/data/make_demo_msd.py), MSD layout',
        'tensorImageSize': '3D',
        'modality': {'0': 'CT'},
        'labels': {'0': 'background', '1': 'liver', '2': 'tumour'},
        'numTraining': num_train,
        'numTest': num_test,
        'training': training,
        'test': test,
    }
    os.makedirs(out, exist_ok=True)
    with open(osp.join(out, 'dataset.json'), 'w') as f:
        json.dump(description, f, indent=2)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/msd_demo/Task03_Liver')
    parser.add_argument('--num-train', type=int, default=10)
    parser.add_argument('--num-test', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    print(generate(args.out, args.num_train, args.num_test, args.seed))


if __name__ == '__main__':
    main()
