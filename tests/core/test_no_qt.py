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
