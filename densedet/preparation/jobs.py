"""Running a function over the cases of a raw volume dataset: in this process or in single-threaded
worker processes, with a progress line per case; shards for cluster arrays."""
import multiprocessing
import time
from typing import Callable, Iterable, Optional, Sequence

from densedet.errors import BadConfigError
from densedet.registry import DATASETS


def raw_cases(dataset_cfg: dict) -> tuple:
    """``(items, metainfo)``: the labelled cases of a raw volume dataset config (no pipeline run)."""
    dataset = DATASETS.build(dict(dataset_cfg, pipeline=[], split='train'))
    return [dataset.get_data_info(i) for i in range(len(dataset))], dataset.metainfo


def run_cases(func: Callable, items: Sequence[dict], workers: int, log: Callable = print) -> Iterable:
    """``func(item)`` for each item, in ``workers`` processes (1: in this one), yielding results
    as they finish with a progress line each."""
    total, start = len(items), time.perf_counter()

    def report(k, item, result, seconds):
        log(f'[{k}/{total}] {item["case_id"]}: {seconds:.2f} s (elapsed {time.perf_counter() - start:.0f} s)')
        return result

    if workers <= 1:
        for k, item in enumerate(items, 1):
            t = time.perf_counter()
            result = func(item)
            yield report(k, item, result, time.perf_counter() - t)
        return
    with multiprocessing.get_context('fork').Pool(workers, initializer=_single_thread) as pool:
        for k, (item, result, seconds) in enumerate(pool.imap_unordered(_Timed(func), items), 1):
            yield report(k, item, result, seconds)


def _single_thread():
    import torch
    torch.set_num_threads(1)


class _Timed:

    def __init__(self, func):
        self.func = func

    def __call__(self, item):
        t = time.perf_counter()
        return item, self.func(item), time.perf_counter() - t


def parse_shard(shard: Optional[str]) -> tuple:
    if not shard:
        return 0, 1
    try:
        index, count = (int(v) for v in shard.split('/'))
    except ValueError:
        raise BadConfigError(f'--shard must be I/N (e.g. 0/4), got {shard!r}') from None
    if not (count >= 1 and 0 <= index < count):
        raise BadConfigError(f'--shard {shard}: needs 0 <= I < N')
    return index, count
