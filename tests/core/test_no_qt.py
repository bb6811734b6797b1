"""The core must not import Qt (design guide: layers point down)."""

import subprocess
import sys


def test_core_imports_without_qt():
    code = (
        "import sys\n"
        "import restorelab, restorelab.io, restorelab.denoise, restorelab.params, restorelab.jobs\n"
        "from restorelab import denoise\n"
        "denoise.names()\n"
        "for mod in ('restorelab.edit', 'restorelab.prior', 'restorelab.models'):\n"
        "    try:\n"
        "        __import__(mod)\n"
        "    except ModuleNotFoundError:\n"
        "        pass\n"
        "qt = ('PySide6', 'pyqtgraph', 'superqt', 'shiboken6')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in qt]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_import_makes_openmp_threads_sleep_unless_the_user_chose() -> None:
    """``import restorelab`` sets OMP_WAIT_POLICY=PASSIVE before torch loads, and never overrides."""
    import os

    code = "import os, restorelab; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"
