#!/usr/bin/env bash
# The speed table of issue 14 on one CUDA GPU, prepared for a session that is lent one (this
# project's machines have none; the suite never runs it). RDNet-T (densedet) against timm's
# rdnet_tiny (same weights) and convnext_tiny, forward on 1x3x512x512 and a training step on
# 8x3x512x512: fp32, fp16 and bf16 autocast, fp16 in channels-last; then UperNet-RDNet-T against
# UperNet-ConvNeXt-T (mmseg's TIMMBackbone) in fp32 and fp16; then the seed papers' ratios (benchmark.py
# --paper-claims, one process, fp32). Two tables, each one run (ratios and
# speed-ups within the run); 16 worker processes, one round each: about 4-5 minutes on one GPU
# (each process pays ~15 s of imports and CUDA start-up). Markdown on stdout, JSON per table in $OUT.
#
#   bash tools/analysis/gpu_bench.sh                 # PYTHON=.venv/bin/python OUT=work_dirs/gpu_bench
#   DEVICE=cpu SIZE=64 BATCH=2 ITERS=1 bash tools/analysis/gpu_bench.sh   # smoke run without a GPU
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY="${PYTHON:-.venv/bin/python}"
OUT="${OUT:-work_dirs/gpu_bench}"
DEVICE="${DEVICE:-cuda}"
mkdir -p "$OUT"
bench() {  # NAME ARGS...
  local name=$1
  shift
  echo "## $name"
  "$PY" tools/analysis/benchmark.py --device "$DEVICE" --size "${SIZE:-512}" --batch "${BATCH:-8}" \
    --threads "${THREADS:-8}" --rounds 1 --iters "${ITERS:-10}" --json "$OUT/$name.json" "$@" 2>/dev/null
}
bench backbone --arch tiny --models densedet,reference,convnext --modes fp32,fp16,bf16,fp16+cl
bench upernet --config configs/upernet_rdnet_ade20k.py --models densedet,convnext --modes fp32,fp16
# the seed papers' headline ratios (issue 25): FC-HarDNet-70 at SIZE x 2*SIZE, the others at SIZE or 224
echo "## paper claims"
"$PY" tools/analysis/benchmark.py --paper-claims --device "$DEVICE" --size "${SIZE:-512}" --batch "${BATCH:-8}" \
  --threads "${THREADS:-8}" --rounds 3 --iters "${ITERS:-10}" --json "$OUT/paper_claims.json" 2>/dev/null
