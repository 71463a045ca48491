"""What the benchmark modes share: the repository root, the process's resident memory, the
subprocess rounds that measure each model in a fresh process, and the JSON report."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rss_kib() -> int:
    """The process's resident memory now (KiB)."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') // 1024


def run_rounds(args, script: str, models, modes, worker_args) -> dict:
    """``{(model, mode): [result per round]}``: each model in each mode measured ``args.rounds`` times,
    each time in a fresh process (``script --worker MODEL ...``), models and modes interleaved.
    ``worker_args(mode, round)`` gives the worker's options besides ``--worker``."""
    results = {(m, mode): [] for mode in modes for m in models}
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    for r in range(args.rounds):
        for mode in modes:
            for m in models:
                out = subprocess.run([sys.executable, script, '--worker', m, *worker_args(mode, r)],
                                     capture_output=True, text=True, env=env)
                if out.returncode != 0:
                    raise RuntimeError(f'worker {m} ({mode}) failed:\n{out.stderr[-3000:]}')
                line = [ln for ln in out.stdout.splitlines() if ln.startswith('RESULT ')][-1]
                results[m, mode].append(json.loads(line[len('RESULT '):]))
                print(f'round {r + 1}/{args.rounds} {m} {mode}: {results[m, mode][-1]}', file=sys.stderr, flush=True)
    return results


def write_report(args, **sections) -> None:
    """``--json PATH``: the command's arguments and the given sections (summary, runs, ...)."""
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), **sections), f, indent=1)


def subprocess_result(cmd, env=None, what: str = '', cwd=None) -> dict:
    """Runs a measuring subprocess; returns the JSON of its last ``RESULT {...}`` line."""
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    if out.returncode != 0 or 'RESULT ' not in out.stdout:
        raise RuntimeError(f'{what or cmd[0]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}')
    line = [ln for ln in out.stdout.splitlines() if ln.startswith('RESULT ')][-1]
    return json.loads(line[7:])
