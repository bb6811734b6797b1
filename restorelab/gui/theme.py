"""Fusion style with a dark palette when the platform is in dark mode (or asked for)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication


def platform_is_dark() -> bool:
    """Qt ≥ 6.5 reports the platform's colour scheme; an image editor defaults to dark
    when the platform does not say (X servers without a desktop, offscreen)."""
    try:
        return QGuiApplication.styleHints().colorScheme() != Qt.ColorScheme.Light
    except AttributeError:  # pragma: no cover - older Qt
        return False


def dark_palette() -> QPalette:
    p = QPalette()
    base, alt, text = QColor(37, 37, 41), QColor(50, 50, 55), QColor(224, 224, 224)
    R = QPalette.ColorRole
    p.setColor(R.Window, alt)
    p.setColor(R.WindowText, text)
    p.setColor(R.Base, base)
    p.setColor(R.AlternateBase, alt)
    p.setColor(R.ToolTipBase, QColor(60, 60, 66))
    p.setColor(R.ToolTipText, text)
    p.setColor(R.Text, text)
    p.setColor(R.Button, alt)
    p.setColor(R.ButtonText, text)
    p.setColor(R.BrightText, QColor(255, 90, 90))
    p.setColor(R.Highlight, QColor(62, 128, 214))
    p.setColor(R.HighlightedText, QColor(255, 255, 255))
    p.setColor(R.Link, QColor(98, 160, 234))
    p.setColor(QPalette.ColorGroup.Disabled, R.Text, QColor(128, 128, 128))
    p.setColor(QPalette.ColorGroup.Disabled, R.ButtonText, QColor(128, 128, 128))
    p.setColor(QPalette.ColorGroup.Disabled, R.WindowText, QColor(128, 128, 128))
    return p


def apply_theme(app: QApplication, mode: str = "auto") -> bool:
    """``auto`` follows the platform, ``dark``/``light`` force it. Returns True when dark."""
    app.setStyle("Fusion")
    dark = mode == "dark" or (mode == "auto" and platform_is_dark())
    app.setPalette(dark_palette() if dark else app.style().standardPalette())
    return dark
