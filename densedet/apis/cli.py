"""Command-line options shared by tools/train.py and tools/test.py (mmseg's / mmdet's flags)."""
import argparse
import os

from mmengine.config import DictAction


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


# Errors densedet raises on purpose for bad input (each names the file / key / argument at fault).
USER_ERRORS = (FileNotFoundError, ValueError, KeyError, NotImplementedError)
_OWN_CODE = tuple(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), d) +
                  os.sep for d in ('densedet', 'tools'))


def _raised_by_densedet(error: BaseException) -> bool:
    """Whether ``error`` (or an exception it wraps, e.g. mmengine's registry re-raising a build
    error) was raised in densedet's or the tools' own code."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        tb = error.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_OWN_CODE):
            return True
        error = error.__cause__ or error.__context__
    return False


def run_tool(main, argv=None):
    """Runs a tool's ``main``: densedet's own bad-input errors become one ``PROG: error: ...`` line
    and exit status 1; ``--debug`` (or ``DENSEDET_DEBUG=1``) shows their traceback. Unexpected
    exceptions keep theirs."""
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = '--debug' in argv or os.environ.get('DENSEDET_DEBUG', '') not in ('', '0')
    argv = [a for a in argv if a != '--debug']
    try:
        return main(argv)
    except USER_ERRORS as error:
        if debug or not _raised_by_densedet(error):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
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
