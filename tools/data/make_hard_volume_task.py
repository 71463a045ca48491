"""Generates a synthetic CT task clearly harder than the demo's, in nnU-Net v2's raw layout, for the
head-to-head cross-validation benchmark (tools/analysis/benchmark.py --crossval-nnunet).

    python tools/data/make_hard_volume_task.py --out DIR/Dataset502_HardLiver [--cases 20] [--seed 0]

Per case (seeded): an elliptic body in air; a liver-like organ (label 1) and a distractor organ of
the same intensity and texture beside it (a spleen: unlabelled, background); one to four small
low-contrast lesions inside the organ (label 2: 2-5 mm radius, 15-35 HU darker than the organ);
then a smooth additive bias field (+-30 HU, a few random low-frequency cosines), Gaussian noise
(sigma 15 HU) and a per-case intensity calibration (gain 0.85-1.15, offset +-40 HU), stored as
int16 "HU". Shapes vary (16-20 slices of 48-56 x 48-56 voxels); spacing is anisotropic (2.5-3.5 mm
slices, 0.8-1.0 mm in plane) with flipped, non-identity affines. Layout: ``dataset.json``
(``channel_names`` 0: CT, ``labels`` background / liver / lesion, ``file_ending``),
``imagesTr/hard_NNN_0000.nii.gz``, ``labelsTr/hard_NNN.nii.gz``. Not anatomy.
"""
import argparse
import os.path as osp

import numpy as np

from densedet.fileio import write_json, write_nifti


def ellipsoid(grid, centre, radii) -> np.ndarray:
    return sum(((g - c) / r)**2 for g, c, r in zip(grid, centre, radii)) <= 1.0


def bias_field(rng, shape, amplitude: float) -> np.ndarray:
    grid = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing='ij')
    field = np.zeros(shape, np.float32)
    for _ in range(3):
        frequency = rng.uniform(0.3, 1.2, size=3)
        phase = rng.uniform(0, 2 * np.pi, size=3)
        field += np.prod([np.cos(2 * np.pi * f * g + p) for f, g, p in zip(frequency, grid, phase)], axis=0)
    return (amplitude * field / max(np.abs(field).max(), 1e-6)).astype(np.float32)


def make_case(rng):
    """``(image HU int16, label uint8, spacing (D, H, W))``."""
    shape = (int(rng.integers(16, 21)), int(rng.integers(48, 57)), int(rng.integers(48, 57)))
    d, h, w = shape
    spacing = (float(rng.uniform(2.5, 3.5)), float(rng.uniform(0.8, 1.0)), float(rng.uniform(0.8, 1.0)))
    grid = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing='ij')
    body = np.broadcast_to(ellipsoid(grid[1:], (h / 2, w / 2), (h * 0.44, w * 0.46)), shape)
    organ_hu = rng.uniform(90, 120)
    liver = ellipsoid(grid, (d / 2 + rng.uniform(-2, 2), h * rng.uniform(0.42, 0.55), w * rng.uniform(0.3, 0.4)),
                      (d * rng.uniform(0.3, 0.4), h * rng.uniform(0.16, 0.22), w * rng.uniform(0.15, 0.2))) & body
    spleen = ellipsoid(grid, (d / 2 + rng.uniform(-2, 2), h * rng.uniform(0.35, 0.6), w * rng.uniform(0.7, 0.78)),
                       (d * rng.uniform(0.2, 0.3), h * rng.uniform(0.1, 0.14), w * rng.uniform(0.08, 0.11))) & body
    spleen &= ~liver
    label = liver.astype(np.uint8)
    image = np.full(shape, -1000.0, np.float32)
    image[body] = 40.0
    image[liver | spleen] = organ_hu
    voxels = np.argwhere(liver)
    for _ in range(int(rng.integers(1, 5))):
        centre = voxels[rng.integers(len(voxels))]
        radius_mm = rng.uniform(2.0, 5.0)
        lesion = ellipsoid(grid, centre, tuple(radius_mm / s for s in spacing)) & liver
        label[lesion] = 2
        image[lesion] = organ_hu - rng.uniform(15, 35)
    image[body] += bias_field(rng, shape, 30.0)[body]
    image += rng.normal(0, 15, size=shape).astype(np.float32)
    image = image * rng.uniform(0.85, 1.15) + rng.uniform(-40, 40)
    return np.round(image).astype(np.int16), label, spacing


def make_affine(rng, spacing_dhw) -> np.ndarray:
    angle = rng.uniform(-0.2, 0.2)
    c, s = np.cos(angle), np.sin(angle)
    affine = np.eye(4)
    affine[:3, :3] = np.diag([-1.0, -1.0, 1.0]) @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag(
        spacing_dhw[::-1])
    affine[:3, 3] = rng.uniform(-100, 100, size=3)
    return affine


def generate(out: str, cases: int = 20, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    for i in range(cases):
        image, label, spacing = make_case(rng)
        affine = make_affine(rng, spacing)
        name = f'hard_{i:03d}'
        write_nifti(image, osp.join(out, 'imagesTr', f'{name}_0000.nii.gz'), affine, dtype=np.int16)
        write_nifti(label, osp.join(out, 'labelsTr', f'{name}.nii.gz'), affine, dtype=np.uint8)
    desc = dict(channel_names={'0': 'CT'}, labels=dict(background=0, liver=1, lesion=2), numTraining=cases,
                file_ending='.nii.gz', name=osp.basename(out), description='densedet synthetic hard liver task')
    write_json(desc, osp.join(out, 'dataset.json'))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='data/hard_liver/Dataset502_HardLiver')
    parser.add_argument('--cases', type=int, default=20)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    print(f'wrote {args.cases} cases to {generate(args.out, args.cases, args.seed)}')


if __name__ == '__main__':
    main()
