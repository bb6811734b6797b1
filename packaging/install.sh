#!/usr/bin/env bash
# Set up restorelab in a virtual environment (default .venv) from a source checkout.
#  - keeps an existing torch (e.g. a CUDA build a user already has in that venv);
#  - otherwise installs torch 2.13.0, which on these machines is a CPU wheel on local disk
#    (an unpinned `torch` would pull a multi-GB CUDA build);
#  - then installs restorelab in editable mode with the test tools (extra "dev").
# Variables: PYTHON (interpreter to create the venv with), VENV (its folder),
#            EXTRAS (more extras, e.g. "bench,train").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==${TORCH_VERSION:-2.13.0}"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev${EXTRAS:+,$EXTRAS}]"
# Qt's offscreen/xcb platform plugins need a few system libraries (Debian/Ubuntu, as root).
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  need=""
  for lib in libEGL.so.1 libGL.so.1 libxkbcommon.so.0 libxkbcommon-x11.so.0 libfontconfig.so.1 libdbus-1.so.3 \
             libxcb-cursor.so.0 libxcb-icccm.so.4 libxcb-keysyms.so.1 libX11-xcb.so.1 libxcb-image.so.0 \
             libxcb-randr.so.0 libxcb-render-util.so.0 libxcb-shape.so.0 libxcb-xfixes.so.0 libxcb-xkb.so.1; do
    ldconfig -p | grep -q "$lib" || need=1
  done
  if [ -n "$need" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libxcb-cursor0 \
      libxcb-icccm4 libxcb-keysyms1 libx11-xcb1 libxcb-image0 libxcb-randr0 libxcb-render-util0 \
      libxcb-shape0 libxcb-xfixes0 libxcb-xkb1 >/dev/null) || \
      echo "install.sh: could not install Qt's system libraries; GUI tests may fail" >&2
  fi
fi
echo "restorelab is installed in $VENV"
