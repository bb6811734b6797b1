"""Mask painting: a soft round brush, the overlay item, and stroke recording for undo.

The mask is a uint8 (H, W) array owned by the :class:`~restorelab.gui.document.Document`.
The overlay is a ``QGraphicsObject`` whose ``QImage`` (Indexed8, colour table = tint ×
opacity) *wraps the mask buffer without a copy*: a brush stamp writes a few thousand
bytes of the array and asks Qt to redraw only the stamp's rectangle, so painting stays
smooth on a 24 MP image. Opacity changes only touch the 256-entry colour table.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QGraphicsItem, QGraphicsObject, QStyleOptionGraphicsItem, QWidget

from restorelab.gui.undo import TILE, PatchCommand

Rect = tuple[int, int, int, int]  # y0, x0, y1, x1


def brush_stamp(radius: float, hardness: float, fx: float = 0.0, fy: float = 0.0) -> np.ndarray:
    """uint8 disc of ``radius`` px: 255 inside ``hardness·radius``, then a smooth
    (smoothstep) fall-off to 0 at ``radius``. ``fx, fy`` are the sub-pixel offsets of the
    centre. The array is (2R+1)² with R = ceil(radius)."""
    r = max(0.5, float(radius))
    R = int(math.ceil(r))
    yy = np.arange(-R, R + 1, dtype=np.float32)[:, None] - fy
    xx = np.arange(-R, R + 1, dtype=np.float32)[None, :] - fx
    d = np.sqrt(xx * xx + yy * yy)
    inner = r * min(max(hardness, 0.0), 1.0)
    t = np.clip((r - d) / max(r - inner, 1e-3), 0.0, 1.0)
    a = t * t * (3 - 2 * t)
    return (a * 255 + 0.5).astype(np.uint8)


def stamp(
    mask: np.ndarray, cx: float, cy: float, radius: float, hardness: float, erase: bool = False
) -> Rect | None:
    """Stamp the brush at (cx, cy) into ``mask`` in place (max for paint, min for erase).
    Returns the dirty rectangle or None when the brush lies outside the image."""
    H, W = mask.shape
    icx, icy = int(round(cx)), int(round(cy))
    b = brush_stamp(radius, hardness, cx - icx, cy - icy)
    R = b.shape[0] // 2
    y0, x0, y1, x1 = icy - R, icx - R, icy + R + 1, icx + R + 1
    cy0, cx0, cy1, cx1 = max(y0, 0), max(x0, 0), min(y1, H), min(x1, W)
    if cy0 >= cy1 or cx0 >= cx1:
        return None
    sub = b[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    region = mask[cy0:cy1, cx0:cx1]
    if erase:
        np.minimum(region, 255 - sub, out=region)
    else:
        np.maximum(region, sub, out=region)
    return cy0, cx0, cy1, cx1


def segment_points(
    p0: tuple[float, float], p1: tuple[float, float], spacing: float
) -> Iterator[tuple[float, float]]:
    """Points from p0 (excluded) to p1 (included) every ``spacing`` pixels."""
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    n = max(1, int(math.hypot(dx, dy) / max(spacing, 0.5)))
    for i in range(1, n + 1):
        yield p0[0] + dx * i / n, p0[1] + dy * i / n


class Stroke:
    """One brush stroke: stamps into the mask, backs up each touched 256² tile once, and
    becomes a :class:`PatchCommand` of those tiles when it ends."""

    def __init__(self, doc, radius: float, hardness: float, erase: bool) -> None:  # noqa: ANN001
        self.doc, self.radius, self.hardness, self.erase = doc, radius, hardness, erase
        self._before: dict[tuple[int, int], np.ndarray] = {}
        self._last: tuple[float, float] | None = None

    def _backup(self, rect: Rect) -> None:
        y0, x0, y1, x1 = rect
        m = self.doc.mask
        for ty in range(y0 // TILE, (y1 - 1) // TILE + 1):
            for tx in range(x0 // TILE, (x1 - 1) // TILE + 1):
                if (ty, tx) not in self._before:
                    self._before[(ty, tx)] = m[
                        ty * TILE : (ty + 1) * TILE, tx * TILE : (tx + 1) * TILE
                    ].copy()

    def _bounds(self, cx: float, cy: float) -> Rect:
        R = int(math.ceil(self.radius)) + 1
        H, W = self.doc.mask.shape
        return max(0, int(cy) - R), max(0, int(cx) - R), min(H, int(cy) + R + 2), min(W, int(cx) + R + 2)

    def add(self, x: float, y: float) -> Rect | None:
        """Stamp from the last point to (x, y); returns the union dirty rectangle."""
        pts = [(x, y)] if self._last is None else list(segment_points(self._last, (x, y), self.radius * 0.25))
        self._last = (x, y)
        dirty: Rect | None = None
        for px, py in pts:
            b = self._bounds(px, py)
            if b[0] >= b[2] or b[1] >= b[3]:
                continue
            self._backup(b)
            r = stamp(self.doc.mask, px, py, self.radius, self.hardness, self.erase)
            if r is not None:
                dirty = (
                    r
                    if dirty is None
                    else (min(dirty[0], r[0]), min(dirty[1], r[1]), max(dirty[2], r[2]), max(dirty[3], r[3]))
                )
        return dirty

    def finish(self) -> PatchCommand | None:
        """The undo command (already applied) or None if nothing changed."""
        m = self.doc.mask
        patches = []
        for (ty, tx), before in self._before.items():
            after = m[ty * TILE : ty * TILE + before.shape[0], tx * TILE : tx * TILE + before.shape[1]]
            if not np.array_equal(before, after):
                patches.append((ty * TILE, tx * TILE, before, after.copy()))
        if not patches:
            return None
        return PatchCommand(self.doc, "mask", patches, "Erase" if self.erase else "Paint mask", applied=True)


class MaskOverlay(QGraphicsObject):
    """Semi-transparent tint of the mask, redrawn only in dirty rectangles."""

    def __init__(self, color: QColor | None = None, opacity: float = 0.45) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self._color = color or QColor(255, 48, 48)
        self._opacity = opacity
        self._mask: np.ndarray | None = None
        self._qimage: QImage | None = None
        self.setZValue(10)

    def set_mask(self, mask: np.ndarray) -> None:
        """Wrap ``mask`` (uint8, C-contiguous; kept alive here) — no copy."""
        self.prepareGeometryChange()
        self._mask = mask
        h, w = mask.shape
        img = QImage(mask.data, w, h, mask.strides[0], QImage.Format.Format_Indexed8)
        self._qimage = img
        self._apply_colors()
        self.update()

    def _apply_colors(self) -> None:
        if self._qimage is None:
            return
        c = self._color
        table = [
            QColor(c.red(), c.green(), c.blue(), int(round(v * self._opacity))).rgba() for v in range(256)
        ]
        self._qimage.setColorTable(table)

    @property
    def opacity_level(self) -> float:
        return self._opacity

    def set_opacity_level(self, opacity: float) -> None:
        self._opacity = float(min(max(opacity, 0.0), 1.0))
        self._apply_colors()
        self.update()

    def update_rect(self, rect: Rect | None) -> None:
        """Schedule a redraw of ``rect`` (y0, x0, y1, x1) or of everything."""
        if rect is None:
            self.update()
        else:
            y0, x0, y1, x1 = rect
            self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def boundingRect(self) -> QRectF:  # noqa: N802
        if self._mask is None:
            return QRectF()
        h, w = self._mask.shape
        return QRectF(0, 0, w, h)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if self._qimage is None:
            return
        r = option.exposedRect.intersected(self.boundingRect()).toAlignedRect()
        if r.isEmpty():
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(QRectF(r), self._qimage, QRectF(r))

    def shape_hint(self) -> Qt.ItemSelectionMode:  # pragma: no cover - unused helper
        return Qt.ItemSelectionMode.IntersectsItemShape
