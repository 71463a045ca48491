"""Command-line options shared by tools/train.py and tools/test.py (mmseg's / mmdet's flags)."""
import argparse
import os
import re
from typing import Optional

from mmengine.config import DictAction

from densedet.errors import DensedetError


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (xxx=yyy format)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_common(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:  # torchrun sets it; the old launcher passes --local_rank
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


# mmengine's registry: "Foo is not in the mmseg::model registry. Please check ..." (possibly wrapped
# by build_from_cfg as "class `EncoderDecoder` in mmseg/...: Foo is not in ...").
_REGISTRY_MISS = re.compile(r'(\S+) is not in the (\S+) registry')


def user_error_message(error: BaseException) -> Optional[str]:
    """The one-line message of a user error, or None for an unexpected exception.

    User errors: every :class:`~densedet.errors.DensedetError`; mmengine's registry ``KeyError`` for an
    unknown ``type``; mmcv ops that need compiled mmcv (``MissingMMCVOpError``, raised by the module
    that stands in for ``mmcv._ext``, which cannot import densedet). An error re-raised by PyTorch's
    DataLoader from a worker process keeps only the worker's own last line."""
    if isinstance(error, DensedetError) or type(error).__name__ == 'MissingMMCVOpError':
        message = str(error)
    elif isinstance(error, KeyError) and error.args and _REGISTRY_MISS.search(str(error.args[0])):
        name, registry = _REGISTRY_MISS.search(str(error.args[0])).groups()
        message = (f'unknown type {name}: it is not in the {registry} registry (a typo in the config, or the module '
                   'that registers it is not imported: custom_imports)')
    else:
        return None
    if 'Original Traceback' in message:  # raised in a DataLoader worker: "...\nModule.Error: MESSAGE"
        message = message.rstrip().splitlines()[-1].split(': ', 1)[-1]
    return ' '.join(message.split())  # one line, whatever the message held


def run_tool(main, argv=None):
    """Runs a tool's ``main``: user errors (:func:`user_error_message`) become one
    ``PROG: error: ...`` line on stderr and exit status 1; ``--debug`` (or ``DENSEDET_DEBUG=1``)
    shows their traceback. Unexpected exceptions keep theirs."""
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = '--debug' in argv or os.environ.get('DENSEDET_DEBUG', '') not in ('', '0')
    argv = [a for a in argv if a != '--debug']
    try:
        return main(argv)
    except Exception as error:
        message = None if debug else user_error_message(error)
        if message is None:
            raise
        print(f'{os.path.basename(sys.argv[0])}: error: {message} (--debug for the traceback)', file=sys.stderr)
        raise SystemExit(1) from None


def close_process_group() -> None:
    """Ends a distributed run in order: every rank waits for the others, then the process group is
    destroyed. Left to interpreter exit, gloo's worker threads were once torn down mid-flight
    ('terminate called without an active exception', exit -6) in the 2-process CPU test."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
