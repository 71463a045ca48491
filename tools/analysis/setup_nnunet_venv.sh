#!/usr/bin/env bash
# A separate venv with nnU-Net v2 for `benchmark.py --volume-data` (requirements/bench-nnunet.txt).
# It sees .venv's packages (torch, numpy, ...) through a .pth file placed after its own
# site-packages, so its own pins (timm<1.0.23, ...) win inside it and .venv is left untouched.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${NNUNET_VENV:-.venv-nnunet}
[ -x .venv/bin/python ] || { echo "run make setup first (.venv is missing)" >&2; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
    python3.11 -m venv "$VENV"
fi
BASE=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
OWN=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$BASE" > "$OWN/zz-densedet-venv.pth"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements/bench-nnunet.txt \
    torch=="$(.venv/bin/python -c 'import torch; print(torch.__version__.split("+")[0])')"
"$VENV/bin/python" -c 'import nnunetv2, importlib.metadata as m; print("nnunetv2", m.version("nnunetv2"), "in", "'"$VENV"'")'
