"""Help menu: versions, About, and the list of keyboard shortcuts."""

from __future__ import annotations

import platform
import sys

import numpy as np
from PySide6.QtWidgets import QMessageBox, QWidget


def versions() -> dict[str, str]:
    import pyqtgraph
    import PySide6
    import superqt
    import torch

    from restorelab import __version__

    return {
        "restorelab": __version__,
        "Python": platform.python_version(),
        "PySide6": PySide6.__version__,
        "Qt": PySide6.QtCore.qVersion(),
        "pyqtgraph": pyqtgraph.__version__,
        "superqt": superqt.__version__,
        "numpy": np.__version__,
        "torch": torch.__version__,
    }


def about(parent: QWidget, device: str) -> None:
    rows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in versions().items())
    QMessageBox.about(
        parent,
        "About restorelab",
        "<h3>restorelab</h3><p>Image restoration built on denoisers: classical and learned "
        "denoisers, Poisson editing and sampling from the prior implicit in a denoiser.</p>"
        f"<table>{rows}<tr><td>Device</td><td>{device}</td></tr></table><p>{sys.platform}</p>",
    )


def shortcut_rows(parent: QWidget) -> list[tuple[str, str]]:
    """(keys, action) for every action of ``parent`` that has a shortcut."""
    rows = []
    for a in parent.actions():
        keys = ", ".join(s.toString() for s in a.shortcuts() if s.toString())
        if keys:
            rows.append((keys, a.text().replace("&", "")))
    rows.append(("\\ (hold)", "Show the original"))
    rows.append(("Shift+drag", "Erase with the brush"))
    return rows


def show_shortcuts(parent: QWidget) -> None:
    body = "".join(f"<tr><td><b>{k}</b></td><td>{t}</td></tr>" for k, t in shortcut_rows(parent))
    QMessageBox.information(parent, "Keyboard shortcuts", f"<table>{body}</table>")
