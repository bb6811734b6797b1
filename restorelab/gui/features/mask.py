"""Mask painting: brush, eraser and bucket fill tools, the brush panel and the mask menu.

Brush stamps are a few thousand bytes and stay on the GUI thread; everything that scans
the whole mask (fill's connected components, loading a mask file) runs as a job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QFormLayout, QLabel, QWidget
from superqt import QLabeledDoubleSlider

from restorelab.gui.context import AppContext, ToolSpec
from restorelab.gui.features.base import Area, Feature
from restorelab.gui.mask import Stroke
from restorelab.gui.undo import MaskCommand

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.npy);;All files (*)"


def fill_region(mask: np.ndarray, x: int, y: int) -> np.ndarray | None:
    """The mask with the unpainted 4-connected region under (x, y) painted (255), or None
    when (x, y) is outside or already painted."""
    from scipy import ndimage

    h, w = mask.shape
    if not (0 <= x < w and 0 <= y < h):
        return None
    free = mask < 128
    if not free[y, x]:
        return None
    lab, _ = ndimage.label(free)
    new = mask.copy()
    new[lab == lab[y, x]] = 255
    return new


class BrushHandler:
    """Paint (or erase, also with Shift held) the mask with a soft round brush."""

    def __init__(self, feature: MaskFeature, erase: bool = False) -> None:
        self.f, self.erase = feature, erase
        self.stroke: Stroke | None = None

    def press(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        doc = self.f.doc
        if doc is None:
            return
        erase = self.erase or bool(mods & Qt.KeyboardModifier.ShiftModifier)
        self.stroke = Stroke(doc, self.f.radius, self.f.hardness, erase)
        self.f.ctx.canvas.overlay.update_rect(self.stroke.add(x, y))

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        if self.stroke is not None:
            self.f.ctx.canvas.overlay.update_rect(self.stroke.add(x, y))

    def release(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        if self.stroke is None:
            return
        self.f.ctx.canvas.overlay.update_rect(self.stroke.add(x, y))
        cmd = self.stroke.finish()
        self.stroke = None
        if cmd is not None and self.f.doc is not None:
            self.f.doc.push(cmd)

    def click(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        self.press(x, y, mods)
        self.release(x, y, mods)


class FillHandler:
    """Bucket fill: a click fills the unpainted region connected to it (a job)."""

    def __init__(self, feature: MaskFeature) -> None:
        self.f = feature

    def press(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        pass

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        pass

    def release(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        pass

    def click(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        self.f.fill_at(int(np.floor(x)), int(np.floor(y)))


class MaskFeature(Feature):
    key = "mask"
    title = "Mask"
    area = Area.LeftDockWidgetArea

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.radius = float(s.value("brush/radius", 12.0))
        self.hardness = float(s.value("brush/hardness", 0.6))
        for spec in (
            ToolSpec("brush", "&Brush", "B", "Paint the mask", lambda: BrushHandler(self), brush=True),
            ToolSpec(
                "eraser", "&Eraser", "E", "Erase the mask", lambda: BrushHandler(self, True), brush=True
            ),
            ToolSpec(
                "fill", "&Fill", "G", "Fill the unpainted region under the click", lambda: FillHandler(self)
            ),
        ):
            ctx.add_tool(spec)
        ctx.tool_changed.connect(self._tool_changed)
        self._build()

    def _build(self) -> None:
        w = self.widget = QWidget()
        form = QFormLayout(w)
        self.radius_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.radius_slider.setRange(1, 400)
        self.radius_slider.setValue(self.radius)
        self.radius_slider.setToolTip("Brush radius in image pixels  ( [ smaller, ] larger )")
        self.radius_slider.valueChanged.connect(lambda v: self.set_radius(v))
        self.hardness_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.hardness_slider.setRange(0, 1)
        self.hardness_slider.setDecimals(2)
        self.hardness_slider.setValue(self.hardness)
        self.hardness_slider.setToolTip("1 = hard edge, 0 = soft fall-off  ( { softer, } harder )")
        self.hardness_slider.valueChanged.connect(lambda v: setattr(self, "hardness", float(v)))
        self.opacity_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 1)
        self.opacity_slider.setDecimals(2)
        self.opacity_slider.setValue(float(self.ctx.settings.value("mask/opacity", 0.45)))
        self.opacity_slider.setToolTip("Opacity of the mask overlay")
        overlay = self.ctx.canvas.overlay
        self.opacity_slider.valueChanged.connect(lambda v: overlay.set_opacity_level(float(v)))
        overlay.set_opacity_level(self.opacity_slider.value())
        form.addRow("Radius (px)", self.radius_slider)
        form.addRow("Hardness", self.hardness_slider)
        form.addRow("Overlay opacity", self.opacity_slider)
        hint = QLabel(
            "B brush · E eraser (or Shift+drag) · G fill · H pan\n"
            "Right or middle drag pans, wheel zooms to the cursor."
        )
        hint.setWordWrap(True)
        hint.setStyleSheet("color: gray")
        form.addRow(hint)

    def dock(self) -> QWidget:
        return self.widget

    def actions(self) -> list[QAction]:
        a = self.action
        return [
            a("Larger brush", lambda: self.set_radius(self.radius * 1.25, True), menu="Tools", shortcut="]"),
            a("Smaller brush", lambda: self.set_radius(self.radius / 1.25, True), menu="Tools", shortcut="["),
            a("Harder brush", lambda: self.set_hardness(self.hardness + 0.1), menu="Tools", shortcut="}"),
            a("Softer brush", lambda: self.set_hardness(self.hardness - 0.1), menu="Tools", shortcut="{"),
            a("&Clear mask", self.clear, menu="Edit", shortcut="Ctrl+Shift+X"),
            a("&Invert mask", self.invert, menu="Edit", shortcut="Ctrl+I"),
            a("Select &all (mask)", self.select_all, menu="Edit", shortcut="Ctrl+A"),
            a("&Load mask…", lambda: self.load(), menu="File", tip="Load a mask from an image (white = on)"),
            a("&Save mask…", lambda: self.save(), menu="File", tip="Save the mask as an 8-bit PNG"),
        ]

    # -- brush ------------------------------------------------------------------------------
    def set_radius(self, r: float, sync: bool = False) -> None:
        self.radius = float(min(max(r, 1.0), 400.0))
        if sync:
            self.radius_slider.setValue(self.radius)
        if self.ctx.canvas.brush_radius:
            self.ctx.canvas.set_brush_cursor(self.radius)

    def set_hardness(self, h: float) -> None:
        self.hardness = float(min(max(h, 0.0), 1.0))
        self.hardness_slider.setValue(self.hardness)

    def _tool_changed(self, key: str) -> None:
        spec = self.ctx.tools.get(key)
        self.ctx.canvas.set_brush_cursor(self.radius if spec is not None and spec.brush else None)
        if key in ("brush", "eraser", "fill"):
            self.ctx.raise_dock(self.key)

    # -- whole-mask edits ---------------------------------------------------------------
    def _apply(self, new: np.ndarray, text: str) -> None:
        if self.doc is not None:
            self.doc.push(MaskCommand(self.doc, new, text))

    def clear(self) -> None:
        if self.doc is not None:
            self._apply(np.zeros_like(self.doc.mask), "Clear mask")

    def invert(self) -> None:
        if self.doc is not None:
            self._apply(255 - self.doc.mask, "Invert mask")

    def select_all(self) -> None:
        if self.doc is not None:
            self._apply(np.full_like(self.doc.mask, 255), "Mask everything")

    def fill_at(self, x: int, y: int) -> bool:
        """Fill the unpainted region under (x, y), computed on the worker."""
        doc = self.doc
        if doc is None:
            return False
        mask = doc.mask.copy()

        def job() -> Any:
            return fill_region(mask, x, y)
            yield  # a generator: the runner drives it

        def done(new: Any) -> None:
            if new is not None and self.doc is doc:
                self._apply(new, "Fill mask")

        return self.ctx.run("Fill", job, done, quiet=True)

    def load(self, path: str | None = None) -> bool:
        doc = self.doc
        if doc is None:
            return False
        if not path:
            path, _ = QFileDialog.getOpenFileName(None, "Load mask", self.ctx.last_dir(), IMAGE_FILTER)
            if not path:
                return False
        shape = doc.mask.shape

        def job() -> Any:
            from restorelab.io import load_mask
            from restorelab.workspace import mask_to_coverage

            return mask_to_coverage(load_mask(path, shape), shape)  # the one mask rule: ≥ half scale
            yield

        def done(m: Any) -> None:
            if self.doc is doc:
                self._apply(m, "Load mask")

        return self.ctx.run("Load mask", job, done)

    def save(self, path: str | None = None) -> bool:
        doc = self.doc
        if doc is None:
            return False
        if not path:
            base = doc.path or Path(self.ctx.last_dir()) / "untitled.png"
            path, _ = QFileDialog.getSaveFileName(
                None, "Save mask", str(base.with_name(base.stem + "_mask.png")), "PNG (*.png)"
            )
            if not path:
                return False
        p = Path(path)
        m = doc.mask.copy()

        def job() -> Any:
            from restorelab.io import save_image

            save_image(p, m.astype(np.float32) / 255.0, overwrite=p.exists())
            return p
            yield

        return self.ctx.run("Save mask", job, lambda _: self.ctx.status(f"Mask saved to {p}"))

    def shutdown(self) -> None:
        s = self.ctx.settings
        s.setValue("brush/radius", self.radius)
        s.setValue("brush/hardness", self.hardness)
        s.setValue("mask/opacity", self.opacity_slider.value())
