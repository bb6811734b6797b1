"""Render resources/icons/restorelab.svg to PNG sizes (uses Qt's SVG renderer; run once).

    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/render_icon.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"


def render(size: int, out: Path) -> None:
    r = QSvgRenderer(str(ICONS / "restorelab.svg"))
    if not r.isValid():
        raise SystemExit("invalid SVG")
    img = QImage(size, size, QImage.Format.Format_ARGB32)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    r.render(p)
    p.end()
    if not img.save(str(out)):
        raise SystemExit(f"cannot write {out}")


if __name__ == "__main__":
    app = QGuiApplication(sys.argv[:1])
    render(256, ICONS / "restorelab.png")
    render(64, ICONS / "restorelab-64.png")
    print("wrote", ICONS / "restorelab.png", ICONS / "restorelab-64.png")
