#!/usr/bin/env bash
# Build the one-folder bundle dist/restorelab/ with PyInstaller, report its size and run
# the frozen program's self-test.
#
#   bash packaging/build.sh
#
# Uses the project venv (VENV, default .venv; created with packaging/install.sh when
# missing, which keeps/installs the CPU build of torch), installs PyInstaller into it if
# needed, runs packaging/restorelab.spec, prints the bundle size, then runs
#   dist/restorelab/restorelab selftest      (core parts, no window)
#   dist/restorelab/restorelab --self-test   (the window offscreen: open the sample, denoise,
#                                              clone, 10-step sampler)
# and exits with the code of --self-test.
# Variables: VENV, DIST (default dist), WORK (default build/pyinstaller),
#            SELFTEST_TIMEOUT (s, default 600), SKIP_SELFTEST=1.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
DIST=${DIST:-dist}
WORK=${WORK:-build/pyinstaller}
if [ ! -x "$VENV/bin/python" ]; then
  VENV="$VENV" bash packaging/install.sh
fi
PY="$VENV/bin/python"
if ! "$PY" -c "import PyInstaller" >/dev/null 2>&1; then
  "$PY" -m pip install -q --disable-pip-version-check "pyinstaller>=6.0"
fi
if "$PY" -c "import sys, torch; sys.exit(0 if torch.version.cuda else 1)" >/dev/null 2>&1; then
  echo "build.sh: note: this venv has a CUDA build of torch; the bundle will hold its CUDA libraries (GBs)." >&2
fi
t0=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$DIST" --workpath "$WORK" packaging/restorelab.spec
t1=$(date +%s)
APP="$DIST/restorelab"
echo "build.sh: built $APP in $((t1 - t0)) s"
echo "build.sh: bundle size: $(du -sh "$APP" | cut -f1) ($(du -sb "$APP" | cut -f1) bytes, $(find "$APP" -type f | wc -l) files)"
echo "build.sh: largest parts:"
du -ah "$APP/_internal" 2>/dev/null | sort -rh | sed -n '2,9p' | sed 's/^/  /'
if [ "${SKIP_SELFTEST:-0}" = "1" ]; then
  exit 0
fi
set +e
echo "build.sh: running $APP/restorelab selftest (core, no window)"
RESTORELAB_NO_AUTOSAVE=1 timeout "${SELFTEST_TIMEOUT:-600}" "$APP/restorelab" selftest
core_rc=$?
echo "build.sh: running $APP/restorelab --self-test (the window, offscreen)"
QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen} RESTORELAB_NO_AUTOSAVE=1 \
  timeout "${SELFTEST_TIMEOUT:-600}" "$APP/restorelab" --self-test
rc=$?
set -e
echo "build.sh: core selftest exit code $core_rc, --self-test exit code $rc"
if [ $rc -eq 0 ]; then
  echo "build.sh: self-test passed"
else
  echo "build.sh: self-test FAILED (exit code $rc)" >&2
fi
exit $rc
