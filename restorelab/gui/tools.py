"""Canvas tool handlers: brush, eraser, fill (image coordinates in, undoable edits out)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt

from restorelab.gui.mask import Stroke

if TYPE_CHECKING:
    from restorelab.gui.main_window import MainWindow


class BrushHandler:
    """Paint (or erase, also with Shift held) the mask with a soft round brush."""

    def __init__(self, win: MainWindow, erase: bool = False) -> None:
        self.win, self.erase = win, erase
        self.stroke: Stroke | None = None

    def press(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        doc = self.win.doc
        if doc is None:
            return
        erase = self.erase or bool(mods & Qt.KeyboardModifier.ShiftModifier)
        self.stroke = Stroke(doc, self.win.brush_radius, self.win.brush_hardness, erase)
        self.win.canvas.overlay.update_rect(self.stroke.add(x, y))

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        if self.stroke is not None:
            self.win.canvas.overlay.update_rect(self.stroke.add(x, y))

    def release(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        if self.stroke is None:
            return
        self.win.canvas.overlay.update_rect(self.stroke.add(x, y))
        cmd = self.stroke.finish()
        self.stroke = None
        if cmd is not None and self.win.doc is not None:
            self.win.doc.push(cmd)

    def click(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        self.press(x, y, mods)
        self.release(x, y, mods)


class FillHandler:
    """Bucket fill: a click fills the unpainted region connected to it (4-neighbours)."""

    def __init__(self, win: MainWindow) -> None:
        self.win = win

    def press(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        pass

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        pass

    def release(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        pass

    def click(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        from scipy import ndimage

        doc = self.win.doc
        if doc is None:
            return
        ix, iy = int(np.floor(x)), int(np.floor(y))
        h, w = doc.mask.shape
        if not (0 <= ix < w and 0 <= iy < h):
            return
        free = doc.mask < 128
        if not free[iy, ix]:
            return
        lab, _ = ndimage.label(free)
        region = lab == lab[iy, ix]
        new = doc.mask.copy()
        new[region] = 255
        doc.apply_mask(new, "Fill mask")
