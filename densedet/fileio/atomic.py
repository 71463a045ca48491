"""Files written whole or not at all: a reader (or a rerun after a kill) sees the old file or the
complete new one, never a part."""
import json
import os
import os.path as osp
from typing import Callable


def atomic_write(path: str, write: Callable, mode: str = 'wb') -> str:
    """``write(file)`` into a temporary file beside ``path``, then renamed to it."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, mode) as f:
        write(f)
    os.replace(tmp, path)
    return path


def write_json(obj, path: str) -> str:
    """Atomic JSON write."""
    return atomic_write(path, lambda f: json.dump(obj, f, indent=1), mode='w')
