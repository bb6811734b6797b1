"""The image canvas: pyqtgraph ``ImageItem`` in a ``ViewBox``.

Wheel zooms to the cursor, the middle or left button pans (left only when no tool takes
it), :meth:`Canvas.fit` / :meth:`Canvas.one_to_one`. The image is converted once to
uint8 for display and redrawn only where the document says it changed; at every zoom Qt
scales the cached image, so a 24 MP photo stays fluid. Before/after: a draggable split
line (the original on the left) and :meth:`Canvas.show_original` for the hold-to-compare
key. Tools receive image coordinates through a small handler protocol
(``press/move/release/click(x, y, modifiers)``).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QGraphicsRectItem

from restorelab.gui.display import to_display
from restorelab.gui.mask import MaskOverlay

__all__ = ["Canvas", "ToolHandler", "to_display"]

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)


class ToolHandler(Protocol):
    def press(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None: ...
    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None: ...
    def release(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None: ...
    def click(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None: ...


class CanvasViewBox(pg.ViewBox):
    """ViewBox whose left button goes to the active tool (if any)."""

    def __init__(self, canvas: Canvas) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.canvas = canvas

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802
        h = self.canvas.handler
        if h is not None and ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            p = self.mapToView(ev.pos())
            mods = ev.modifiers()
            if ev.isStart():
                d = self.mapToView(ev.buttonDownPos())
                h.press(d.x(), d.y(), mods)
                h.move(p.x(), p.y(), mods)
            elif ev.isFinish():
                h.release(p.x(), p.y(), mods)
            else:
                h.move(p.x(), p.y(), mods)
            return
        if ev.button() == Qt.MouseButton.RightButton:
            # right drag pans too (the left button may belong to a tool)
            ev.accept()
            d = self.mapToView(ev.lastPos()) - self.mapToView(ev.pos())
            self.translateBy(x=d.x(), y=d.y())
            return
        super().mouseDragEvent(ev, axis)

    def mouseClickEvent(self, ev: Any) -> None:  # noqa: N802
        h = self.canvas.handler
        if h is not None and ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            p = self.mapToView(ev.pos())
            h.click(p.x(), p.y(), ev.modifiers())
            return
        super().mouseClickEvent(ev)


class Canvas(pg.GraphicsView):
    """Shows a document's image, its mask overlay, previews and comparisons."""

    cursor_info = Signal(str)
    zoom_changed = Signal(float)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setBackground(QColor(38, 38, 42))
        self.vb = CanvasViewBox(self)
        self.setCentralItem(self.vb)
        self.handler: ToolHandler | None = None
        self.image: np.ndarray | None = None
        self._disp: np.ndarray | None = None

        self.item = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.item)
        self.before_clip = QGraphicsRectItem()
        self.before_clip.setPen(QPen(Qt.PenStyle.NoPen))
        self.before_clip.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape, True)
        self.before_clip.setZValue(7)  # above previews: the "before" side shows the original only
        self.vb.addItem(self.before_clip)
        self.before_item = pg.ImageItem(axisOrder="row-major")
        self.before_item.setParentItem(self.before_clip)
        self.before_clip.setVisible(False)
        self.preview_item = pg.ImageItem(axisOrder="row-major")
        self.preview_item.setZValue(6)
        self.preview_item.setVisible(False)
        self.vb.addItem(self.preview_item)
        for it in (self.item, self.before_item, self.preview_item):
            # uint8 display images without levels: pyqtgraph wraps the buffer in a QImage with
            # no per-pixel conversion (a 24 MP photo renders in ~0 ms instead of ~200 ms)
            it.setLevels(None)
        self.overlay = MaskOverlay()
        self.vb.addItem(self.overlay)
        self.split_line = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen((255, 220, 80), width=2))
        self.split_line.setZValue(20)
        self.split_line.setVisible(False)
        self.split_line.sigPositionChanged.connect(self._split_moved)
        self.vb.addItem(self.split_line)
        self.brush_cursor = QGraphicsEllipseItem()
        pen = QPen(QColor(255, 255, 255, 200))
        pen.setCosmetic(True)
        self.brush_cursor.setPen(pen)
        self.brush_cursor.setZValue(30)
        self.brush_cursor.setVisible(False)
        self.vb.addItem(self.brush_cursor)
        self.brush_radius = 0.0
        self.compare = False
        self._showing_original = False
        self.scene().sigMouseMoved.connect(self._mouse_moved)
        self.vb.sigRangeChanged.connect(
            lambda *_: self.image is not None and self.zoom_changed.emit(self.zoom())
        )

    # -- content ------------------------------------------------------------------------------
    def set_image(
        self,
        image: np.ndarray,
        original: np.ndarray | None = None,
        *,
        fit: bool = False,
        display: tuple[np.ndarray, np.ndarray | None] | None = None,
    ) -> None:
        """Show ``image`` (float [0,1]); ``original`` feeds the before/after comparison.

        ``display`` is ``(to_display(image), to_display(original))`` when a worker thread
        already converted them (a large image then costs the GUI thread no conversion)."""
        self.image = image
        self._disp = display[0] if display is not None else to_display(image)
        self.item.setImage(self._disp, autoLevels=False)
        if original is not None:
            before = display[1] if display is not None and display[1] is not None else to_display(original)
            self.before_item.setImage(before, autoLevels=False)
        h, w = image.shape[:2]
        self.split_line.setBounds((0, w))
        if self.split_line.value() <= 0 or self.split_line.value() >= w:
            self.split_line.setValue(w / 2)
        self._split_moved()
        if fit:
            self.fit()

    def update_rect(
        self,
        rect: tuple[int, int, int, int] | None,
        image: np.ndarray | None = None,
        display: np.ndarray | None = None,
    ) -> None:
        """The document image (now ``image`` when its array was replaced) changed in
        ``rect`` (y0, x0, y1, x1); ``display`` is that box already converted."""
        if image is not None:
            self.image = image
        if self.image is None or self._disp is None or rect is None:
            return
        y0, x0, y1, x1 = rect
        if display is not None and display.shape == self._disp.shape:
            self._disp = display  # the whole image changed: take the worker's buffer, no copy
            self.item.setImage(self._disp, autoLevels=False)
            return
        self._disp[y0:y1, x0:x1] = display if display is not None else to_display(self.image[y0:y1, x0:x1])
        self.item.updateImage()

    def set_mask(self, mask: np.ndarray) -> None:
        self.overlay.set_mask(mask)

    def show_preview(
        self, img: np.ndarray | None, origin: tuple[int, int] = (0, 0), display: np.ndarray | None = None
    ) -> None:
        """Overlay a computed preview (a crop at ``origin`` = (y, x), or the whole image);
        ``display`` is ``to_display(img)`` when a worker already made it."""
        if img is None:
            self.preview_item.setVisible(False)
            return
        self.preview_item.setImage(display if display is not None else to_display(img),
                                   autoLevels=False)
        self.preview_item.setPos(origin[1], origin[0])
        self.preview_item.setVisible(True)

    # -- view --------------------------------------------------------------------------------
    def fit(self) -> None:
        if self.image is None:
            return
        h, w = self.image.shape[:2]
        self.vb.setRange(QRectF(0, 0, w, h), padding=0.02)

    def one_to_one(self) -> None:
        """One image pixel per screen pixel, centred where the view is."""
        c = self.vb.viewRect().center()
        w, h = max(self.vb.width(), 1), max(self.vb.height(), 1)
        self.vb.setRange(QRectF(c.x() - w / 2, c.y() - h / 2, w, h), padding=0)

    def zoom_by(self, factor: float) -> None:
        self.vb.scaleBy((1 / factor, 1 / factor))

    def zoom(self) -> float:
        """Screen pixels per image pixel."""
        px = self.vb.viewPixelSize()[0]
        return 1.0 / px if px > 0 else 1.0

    def visible_rect(self) -> tuple[int, int, int, int] | None:
        """The part of the image in view, (y0, x0, y1, x1)."""
        if self.image is None:
            return None
        r = self.vb.viewRect()
        h, w = self.image.shape[:2]
        x0, y0 = max(0, int(r.left())), max(0, int(r.top()))
        x1, y1 = min(w, int(np.ceil(r.right()))), min(h, int(np.ceil(r.bottom())))
        if x1 <= x0 or y1 <= y0:
            return None
        return y0, x0, y1, x1

    # -- comparison -------------------------------------------------------------------------
    def set_compare(self, on: bool) -> None:
        """Before/after split: the original left of the draggable line."""
        self.compare = bool(on)
        self.split_line.setVisible(self.compare)
        self._split_moved()

    def show_original(self, on: bool) -> None:
        """Hold-to-compare: the whole original while ``on``."""
        self._showing_original = bool(on)
        self._split_moved()

    def _split_moved(self, *_: Any) -> None:
        if self.image is None:
            return
        h, w = self.image.shape[:2]
        if self._showing_original:
            self.before_clip.setRect(QRectF(0, 0, w, h))
            self.before_clip.setVisible(True)
        elif self.compare:
            self.before_clip.setRect(QRectF(0, 0, float(self.split_line.value()), h))
            self.before_clip.setVisible(True)
        else:
            self.before_clip.setVisible(False)

    # -- cursor ------------------------------------------------------------------------------
    def set_brush_cursor(self, radius: float | None) -> None:
        self.brush_radius = radius or 0.0
        self.brush_cursor.setVisible(bool(radius))

    def _mouse_moved(self, pos: QPointF) -> None:
        if self.image is None:
            return
        p = self.vb.mapSceneToView(pos)
        x, y = p.x(), p.y()
        if self.brush_radius:
            r = self.brush_radius
            self.brush_cursor.setRect(QRectF(x - r, y - r, 2 * r, 2 * r))
        h, w = self.image.shape[:2]
        ix, iy = int(np.floor(x)), int(np.floor(y))
        if 0 <= ix < w and 0 <= iy < h:
            v = self.image[iy, ix]
            if np.ndim(v) == 0:
                val = f"{float(v) * 255:.1f}"
            else:
                val = " ".join(f"{float(c) * 255:.1f}" for c in np.atleast_1d(v))
            self.cursor_info.emit(f"x {ix}, y {iy}  value {val}")
        else:
            self.cursor_info.emit("")
