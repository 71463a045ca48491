"""Publishes a training checkpoint: weights only, with a content hash in the file names.

    python tools/publish_model.py work_dirs/demo/iter_2000.pth release/upernet_rdnet-t_ade20k

writes ``release/upernet_rdnet-t_ade20k-<sha256[:8]>.pth`` (``state_dict`` + ``meta`` of plain
Python values: loads with ``torch.load(weights_only=True)`` and no allow-list) and
``release/upernet_rdnet-t_ade20k-<sha256[:8]>.safetensors`` (the tensors; ``meta`` as JSON in the
file's metadata), each hash that file's own, as mmseg's ``publish_model.py`` names files. The
optimizer, schedulers and message hub are dropped. The input is read through densedet's safe
loader (no pickle code execution); files are written atomically.
"""
import argparse
import hashlib
import json
import os
import os.path as osp

import torch

from densedet.apis.cli import run_tool
from densedet.engine.checkpoint import load_checkpoint_file
from densedet.errors import BadCheckpointError

META_KEYS = ('epoch', 'iter', 'seed', 'experiment_name', 'time', 'mmengine_version', 'dataset_meta')


def plain(value):
    """``value`` as plain Python (numpy scalars / arrays to numbers / lists), or None to drop it."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, 'tolist'):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return None


def _write_hashed(write, stem, suffix):
    tmp = f'{stem}.tmp{suffix}'
    write(tmp)
    with open(tmp, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    final = f'{stem}-{digest[:8]}{suffix}'
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # as torch.save's .pth; safetensors writes through a private (0600) temp file
    os.replace(tmp, final)
    return final


def publish(src, out_stem):
    checkpoint = load_checkpoint_file(src, map_location='cpu')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not state_dict or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise BadCheckpointError(f'{src}: no state dict of tensors (keys: {sorted(checkpoint)[:8]})')
    meta = {k: plain(v) for k, v in checkpoint.get('meta', {}).items() if k in META_KEYS}
    os.makedirs(osp.dirname(osp.abspath(out_stem)), exist_ok=True)
    pth = _write_hashed(lambda p: torch.save({'state_dict': state_dict, 'meta': meta}, p), out_stem, '.pth')

    def save_safetensors(path):
        from safetensors.torch import save_file
        # safetensors refuses tensors that share memory: each is stored on its own.
        save_file({k: v.detach().contiguous().clone() for k, v in state_dict.items()}, path,
                  metadata={'format': 'pt', 'meta': json.dumps(meta)})

    return pth, _write_hashed(save_safetensors, out_stem, '.safetensors')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint', help='training checkpoint (.pth)')
    parser.add_argument('out', help='output path without suffix, e.g. release/upernet_rdnet-t_ade20k')
    args = parser.parse_args(argv)
    for path in publish(args.checkpoint, args.out):
        print(f'wrote {path} ({osp.getsize(path) / 2**20:.1f} MiB)')


if __name__ == '__main__':
    run_tool(main)
