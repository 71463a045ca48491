"""Files written whole or not at all: a reader (or a rerun after a kill) sees the old file or the
complete new one, never a part; and the lock that keeps two runs from writing one work dir at once."""
import contextlib
import fcntl
import json
import os
import os.path as osp
from typing import Callable, Iterator

from densedet.errors import WorkDirBusyError


def atomic_write(path: str, write: Callable, mode: str = 'wb') -> str:
    """``write(file)`` into a temporary file beside ``path``, then renamed to it."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    try:
        with open(tmp, mode) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return path


def write_json(obj, path: str) -> str:
    """Atomic JSON write."""
    return atomic_write(path, lambda f: json.dump(obj, f, indent=1), mode='w')


@contextlib.contextmanager
def exclusive_lock(directory: str, what: str) -> Iterator[str]:
    """Holds ``directory/.lock`` (an OS file lock, released when the process ends, killed or not) while
    the block runs; a second process asking for it gets one :class:`WorkDirBusyError` naming ``what``
    and the pid that holds it instead of writing the same files at the same time."""
    os.makedirs(directory, exist_ok=True)
    path = osp.join(directory, '.lock')
    with open(path, 'a+') as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or 'unknown'
            raise WorkDirBusyError(f'{what} is being run by another process (pid {holder}; lock {path}): wait for '
                                   'it or stop it; a killed run leaves no lock behind') from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield path
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
