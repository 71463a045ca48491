"""nnU-Net-class augmentation per training sample: densedet's pipeline against nnU-Net v2's own
(``benchmark.py --augmentation``).

    python tools/analysis/benchmark.py --augmentation [--patch 48 160 160] [--samples 40] [--rounds 3]
        [--nnunet-python .venv-nnunet/bin/python]

Both get the same input: the region their spatial transform rotates and zooms out of
(``densedet.transforms.spatial_input_size``, nnU-Net's rule), one float32 channel and a label of
three classes, and produce a ``--patch`` sample. densedet: ``nnunet_augmentation(patch)``
(RandomSpatial3D, noise, blur, brightness, contrast, low resolution, gamma x2, mirroring) after the
loader. nnU-Net: ``nnUNetTrainer.get_training_transforms`` for a 3D patch without deep supervision
(SpatialTransform, the same intensity transforms, mirroring, its label handling). One thread each
(both run augmentation in single-threaded data workers). Per-sample time: median over
``--samples`` after 3 warm-up samples, each side in its own process, ``--rounds`` rounds
interleaved; the ratio is of the medians over rounds.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys

from bench_common import subprocess_result

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

NNUNET = r'''
import json, statistics, sys, time
import numpy as np
import torch
torch.set_num_threads(1)
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
patch, region, samples = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
transforms = nnUNetTrainer.get_training_transforms(
    patch, (-30. / 360 * 2. * np.pi, 30. / 360 * 2. * np.pi), None, (0, 1, 2), False)
rng = np.random.RandomState(0)
image = torch.from_numpy(rng.randn(1, *region).astype(np.float32))
label = torch.from_numpy(rng.randint(0, 3, (1, *region)).astype(np.int16))
times = []
for i in range(samples + 3):
    t = time.perf_counter()
    out = transforms(**{'image': image.clone(), 'segmentation': label.clone()})
    times.append(time.perf_counter() - t)
assert tuple(out['image'].shape[1:]) == tuple(patch), out['image'].shape
print('RESULT ' + json.dumps(dict(per_sample_s=statistics.median(times[3:]))))
'''


def densedet_worker(patch, region, samples) -> dict:
    import time

    import numpy as np
    import torch
    from mmengine.dataset import Compose

    import densedet  # noqa: F401
    from densedet.transforms import nnunet_augmentation
    torch.set_num_threads(1)
    pipeline = Compose(nnunet_augmentation(patch))
    rng = np.random.RandomState(0)
    image = rng.randn(1, *region).astype(np.float32)
    label = rng.randint(0, 3, region).astype(np.uint8)
    np.random.seed(0)
    times = []
    for _ in range(samples + 3):
        t = time.perf_counter()
        out = pipeline(dict(img=image.copy(), gt_seg=label.copy()))
        times.append(time.perf_counter() - t)
    assert tuple(out['img'].shape[1:]) == tuple(patch), out['img'].shape
    return dict(per_sample_s=statistics.median(times[3:]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--patch', type=int, nargs=3, default=[48, 160, 160])
    parser.add_argument('--samples', type=int, default=40)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--nnunet-python', default='.venv-nnunet/bin/python')
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument('--worker', nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        patch, region, samples = json.loads(args.worker[0]), json.loads(args.worker[1]), int(args.worker[2])
        print('RESULT ' + json.dumps(densedet_worker(patch, region, samples)))
        return None
    from densedet.transforms import spatial_input_size
    patch = list(args.patch)
    region = list(spatial_input_size(patch, (30, 30, 30), 0.85))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    spec = [json.dumps(patch), json.dumps(region), str(args.samples)]
    rounds = dict(densedet=[], nnunet=[])
    for _ in range(args.rounds):
        densedet = subprocess_result([sys.executable, __file__, '--worker', *spec], env, 'densedet augmentation', ROOT)
        rounds['densedet'].append(densedet['per_sample_s'])
        if osp.isfile(args.nnunet_python):
            nnunet = subprocess_result([args.nnunet_python, '-c', NNUNET, *spec], env, 'nnU-Net augmentation', ROOT)
            rounds['nnunet'].append(nnunet['per_sample_s'])
    report = dict(patch=patch, region=region, samples=args.samples, rounds=rounds,
                  densedet_s=statistics.median(rounds['densedet']))
    print(f'patch {patch}, loaded region {region}, {args.samples} samples x {args.rounds} rounds, 1 thread')
    print(f"densedet nnunet_augmentation: {report['densedet_s'] * 1000:.1f} ms / sample")
    if rounds['nnunet']:
        report['nnunet_s'] = statistics.median(rounds['nnunet'])
        report['ratio'] = report['densedet_s'] / report['nnunet_s']
        print(f"nnU-Net v2 get_training_transforms: {report['nnunet_s'] * 1000:.1f} ms / sample")
        print(f"densedet / nnU-Net: {report['ratio']:.2f}x")
    else:
        print(f'{args.nnunet_python} not found: nnU-Net side skipped (bash tools/analysis/setup_nnunet_venv.sh)')
    if args.json:
        from densedet.fileio import write_json
        write_json(report, args.json)
    return report


if __name__ == '__main__':
    main()
