#!/usr/bin/env bash
# Installs densedet's pinned stack into .venv. Idempotent: a second run with the
# same inputs checks a stamp and exits in seconds.
#
# mmcv comes in one of two flavours (MMCV_OPS, see docs/install.md):
#  * torchvision (default): the mmcv-lite 2.1.0 wheel (mmcv's Python code, no compiled
#    ops; pip-speed) + densedet/ops/mmcv_ext.py, which serves the ops densedet's configs
#    run (RoIAlign, NMS, soft-NMS) from torchvision through a .pth import hook;
#  * compiled: mmcv 2.1.0 built from the PyPI sdist with all of its ops (15-20 min on
#    2 cores, once; the wheel is cached):
#    - --no-build-isolation (under isolation setup.py cannot import torch and silently
#      drops the ops); setuptools<81 because setup.py imports pkg_resources;
#    - -std=c++14/17 patched to c++20 (torch 2.14 headers need C++20);
#    - the wheel is cached per torch/mmcv version and CPU/CUDA flavour in
#      $DENSEDET_CACHE (pip's own cache may return a wheel built against another torch).
# Both flavours install into the same mmcv/ package directory, so switching uninstalls
# the other one first.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
CACHE="${DENSEDET_CACHE:-$HOME/.cache/densedet}"
REQS="$ROOT/requirements/runtime.txt"
CONSTRAINTS="$ROOT/requirements/constraints.txt"  # exact versions: seeded results do not move with the day
# The flavour sticks: without MMCV_OPS, a venv keeps the one it was set up with.
MMCV_OPS="${MMCV_OPS:-$(cat "$VENV/.densedet-mmcv-ops" 2>/dev/null || echo torchvision)}"
case "$MMCV_OPS" in
  torchvision|compiled) ;;
  *) echo "[setup] MMCV_OPS must be 'torchvision' or 'compiled', got '$MMCV_OPS'" >&2; exit 2 ;;
esac

stamp_inputs() {
  cat "$0" "$REQS" "$CONSTRAINTS" "$ROOT/setup.cfg"
  echo "MMCV_OPS=$MMCV_OPS"
}
STAMP="$VENV/.densedet-setup-$(stamp_inputs | sha256sum | cut -c1-16)"
if [[ -f "$STAMP" ]]; then
  echo "[setup] $VENV is up to date ($(basename "$STAMP"))"
  exit 0
fi

log() { echo "[setup] $*"; }

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating venv $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# pip warns about every package missing from this machine's extra local indexes: drop that noise.
pip_() {
  "$PY" -m pip --disable-pip-version-check "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
  return "${PIPESTATUS[0]}"
}
PIP=(pip_)

log "build tools"
"${PIP[@]}" install -q "pip>=23" "setuptools>=77,<81" wheel
log "torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION"
"${PIP[@]}" install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"

installed() {  # exit 0 when distribution $1 is installed
  "$PY" -c 'import importlib.metadata as md, sys; md.version(sys.argv[1])' "$1" 2>/dev/null
}

if [[ $MMCV_OPS == torchvision ]]; then
  if installed mmcv; then
    log "removing the compiled mmcv (MMCV_OPS=torchvision; make setup MMCV_OPS=compiled brings it back from the cache)"
    "${PIP[@]}" uninstall -q -y mmcv
  fi
  MMCV_REQ="mmcv-lite==$MMCV_VERSION"
  FIND_LINKS=()
else
  # CUDA ops only when nvcc and a device exist.
  FLAVOUR=cpu
  if command -v nvcc >/dev/null 2>&1 && "$PY" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    FLAVOUR=cuda
  fi
  WHEEL_DIR="$CACHE/wheels/torch-$TORCH_VERSION/mmcv-$MMCV_VERSION-$FLAVOUR"
  if installed mmcv-lite; then
    log "removing mmcv-lite (MMCV_OPS=compiled)"
    "${PIP[@]}" uninstall -q -y mmcv-lite
  fi
  if ! ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
    log "building mmcv $MMCV_VERSION ($FLAVOUR ops) from sdist: 15-20 min on 2 cores, cached in $WHEEL_DIR"
    # Build-time imports of mmcv's setup.py.
    "${PIP[@]}" install -q -c "$CONSTRAINTS" ninja numpy packaging addict pyyaml yapf "opencv-python" Pillow "mmengine==0.10.7"
    BUILD="$(mktemp -d)"
    trap 'rm -rf "$BUILD"' EXIT
    "${PIP[@]}" download -q --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$BUILD"
    tar -xzf "$BUILD"/mmcv-"$MMCV_VERSION".tar.gz -C "$BUILD"
    SRC="$BUILD/mmcv-$MMCV_VERSION"
    sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
    grep -q 'std=c++20' "$SRC/setup.py" || { echo "[setup] could not patch C++ standard in mmcv setup.py" >&2; exit 1; }
    mkdir -p "$WHEEL_DIR.tmp"
    ENVS=(MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}")
    [[ $FLAVOUR == cuda ]] && ENVS+=(FORCE_CUDA=1)
    (cd "$SRC" && export "${ENVS[@]}" && "${PIP[@]}" wheel --no-build-isolation --no-deps --no-cache-dir -w "$WHEEL_DIR.tmp" .)
    rm -rf "$WHEEL_DIR" && mv "$WHEEL_DIR.tmp" "$WHEEL_DIR"
  fi
  if ! "$PY" -c 'import importlib.util as u, sys; sys.exit(0 if u.find_spec("mmcv._ext") else 1)' 2>/dev/null \
      || ! installed mmcv; then
    log "installing cached mmcv wheel from $WHEEL_DIR"
    "${PIP[@]}" install -q --no-deps --force-reinstall "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl
  fi
  MMCV_REQ="mmcv==$MMCV_VERSION"
  FIND_LINKS=(--find-links "$WHEEL_DIR")
fi

log "OpenMMLab stack and test tools ($REQS)"
"${PIP[@]}" install -q -r "$REQS" -c "$CONSTRAINTS" "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" "$MMCV_REQ" \
  "${FIND_LINKS[@]}"
log "densedet (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"
log "mmcv ops hook (densedet/ops/mmcv_ext.py; a compiled mmcv/_ext wins over it)"
"$PY" "$ROOT/densedet/ops/mmcv_ext.py" install

MMCV_OPS="$MMCV_OPS" "$PY" - <<'PYEOF'
import os
import torch, torchvision, mmcv, mmengine, mmseg, mmdet
from mmcv.ops import RoIAlign, nms  # noqa: F401  (fails when neither compiled ops nor the hook serve them)
from densedet.ops import mmcv_ext
backend = mmcv_ext.backend()
assert backend == os.environ['MMCV_OPS'], f'mmcv._ext is served by {backend}, expected {os.environ["MMCV_OPS"]}'
print(f'[setup] torch {torch.__version__} torchvision {torchvision.__version__} mmcv {mmcv.__version__} '
      f'(ops: {backend}) mmengine {mmengine.__version__} mmseg {mmseg.__version__} mmdet {mmdet.__version__}')
PYEOF
rm -f "$VENV"/.densedet-setup-*
echo "$MMCV_OPS" > "$VENV/.densedet-mmcv-ops"
touch "$STAMP"
log "done"
