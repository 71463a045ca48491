#!/usr/bin/env bash
# torchrun wrapper behind dist_train.sh / dist_test.sh: dist_run.sh SCRIPT NPROC [script args]
# Several nodes: NNODES=2 NODE_RANK=0|1 MASTER_ADDR=host0 PORT=29500 on each node.
# Without CUDA the processes use gloo on CPU (densedet.compat).
set -euo pipefail
SCRIPT=$1
NPROC=$2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# The interpreter: $PYTHON if set, else the venv of `make setup`, else python on PATH.
if [[ -z "${PYTHON:-}" ]]; then
  PYTHON=python
  [[ -x "$ROOT/.venv/bin/python" ]] && PYTHON="$ROOT/.venv/bin/python"
fi
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec "$PYTHON" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --nproc_per_node="$NPROC" --master_port="${PORT:-29500}" \
  "$ROOT/tools/$SCRIPT" "${@:3}" --launcher pytorch
