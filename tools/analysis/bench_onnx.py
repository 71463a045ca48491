"""ONNX mode of tools/analysis/benchmark.py: onnxruntime (CPU provider) against PyTorch eager on the
same exported graph, weights and image, alternating in one process (needs requirements/deploy.txt)."""
import os
import statistics
import time

import torch
from bench_common import ROOT, write_report

ONNX_MODELS = {'UperNet-RDNet-T': ('configs/upernet_rdnet_ade20k.py', (512, 512)),
               'FC-DenseNet103': ('configs/fcdensenet103_camvid.py', (360, 480))}


def onnx_vs_eager(threads: int, rounds: int, iters: int) -> dict:
    """Median latency of PyTorch eager (fp32, no grad) and onnxruntime (CPU provider, the same
    exported graph and weights) on one image, alternating in one process."""
    import tempfile

    import onnxruntime as ort

    import densedet  # noqa: F401
    from densedet.apis import export_onnx, init_model
    torch.set_num_threads(threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (config, shape) in ONNX_MODELS.items():
            torch.manual_seed(0)
            model = init_model(os.path.join(ROOT, config))
            path = os.path.join(tmp, 'model.onnx')
            wrapper = export_onnx(model, path, shape)
            session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
            x = torch.rand(1, 3, *shape) * 255
            feed = {'input': x.numpy()}
            runs = {'eager': lambda: wrapper(x), 'onnxruntime': lambda: session.run(None, feed)}
            times = {k: [] for k in runs}
            with torch.no_grad():
                diff = float(abs(session.run(None, feed)[0] - wrapper(x).numpy()).max())
                for r in range(rounds):
                    for key in (list(runs) if r % 2 == 0 else list(reversed(runs))):
                        runs[key]()  # warm-up
                        for _ in range(iters):
                            t = time.perf_counter()
                            runs[key]()
                            times[key].append(time.perf_counter() - t)
            results[name] = dict(shape=shape, diff=diff, **{k: statistics.median(v) for k, v in times.items()})
    return results


def run(args) -> dict:
    res = onnx_vs_eager(args.threads, args.rounds, args.iters)
    print(f'\nfp32 inference on one image, {args.threads} threads, median of {args.rounds} rounds x '
          f'{args.iters} iterations (random weights, same graph)\n')
    print('| model | input | PyTorch eager (s) | onnxruntime (s) | onnxruntime / eager | max abs diff |')
    print('|---|---|---|---|---|---|')
    for name, r in res.items():
        print(f"| {name} | {r['shape'][0]}x{r['shape'][1]} | {r['eager']:.4f} | {r['onnxruntime']:.4f} | "
              f"{r['onnxruntime'] / r['eager']:.2f} | {r['diff']:.2g} |")
    write_report(args, summary=res)
    return res
