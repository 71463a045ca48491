import os

import pytest

from densedet.errors import WorkDirBusyError
from densedet.fileio import atomic_write, exclusive_lock


def test_exclusive_lock_refuses_a_second_holder_and_frees_on_exit(tmp_path):
    with exclusive_lock(str(tmp_path / 'fold_0'), 'fold 0 of W') as path:
        assert open(path).read() == str(os.getpid())
        with pytest.raises(WorkDirBusyError, match=rf'^fold 0 of W is being run by another process '
                                                   rf'\(pid {os.getpid()}; lock {path}\)'):
            with exclusive_lock(str(tmp_path / 'fold_0'), 'fold 0 of W'):
                pass
    with exclusive_lock(str(tmp_path / 'fold_0'), 'fold 0 of W'):  # released: the next run takes it
        pass


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / 'a.json'
    path.write_text('old')

    def fail(f):
        f.write('par')
        raise OSError('disk full')

    with pytest.raises(OSError, match='disk full'):
        atomic_write(str(path), fail, mode='w')
    assert path.read_text() == 'old' and os.listdir(tmp_path) == ['a.json']  # no partial file left
