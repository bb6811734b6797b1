"""Looking inside a denoiser (Mohan et al. 2020; Kadkhodaie et al. 2024).

A bias-free or kernel denoiser acts, at each input, as a linear filter adapted to it:
f(y) = J(y) y. The *probe* tool (P) shows, for a clicked pixel, the weights the chosen
denoiser gives the pixels around it (a row of J; recomputed when the method or σ
changes). *Basis of the view* computes the eigen-decomposition of J on the crop under the
view centre: the leading eigenvectors (the adaptive basis), their shrinkage factors λ_k
(the spectrum) and tr J, the effective dimensionality. *σ sweep* plots tr J against σ.
Everything is computed by :mod:`restorelab.analysis` on the worker or the preview runner.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from restorelab import analysis, denoise
from restorelab.gui.context import AppContext, ToolSpec
from restorelab.gui.display import to_display
from restorelab.gui.document import Document
from restorelab.gui.features.base import Area, Feature
from restorelab.gui.runner import LatestRunner

#: side of the crop the basis is computed on (J has (side² · channels)² entries)
BASIS_SIDE = 32
SWEEP_SIGMAS = (5, 10, 15, 25, 35, 50, 75)


def _grid(images: np.ndarray, cols: int = 4) -> np.ndarray:
    """The first images of (k, h, w[, c]) side by side, each scaled to [0, 1] around 0.5."""
    k = images.shape[0]
    rows = (k + cols - 1) // cols
    h, w = images.shape[1:3]
    out = np.full((rows * (h + 1), cols * (w + 1)) + images.shape[3:], 0.5, np.float32)
    for i in range(k):
        v = images[i]
        s = max(float(np.abs(v).max()), 1e-12)
        r, c = divmod(i, cols)
        out[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = 0.5 + 0.5 * v / s
    return out


class ProbeHandler:
    """Click a pixel: its adaptive filter."""

    def __init__(self, feature: AnalysisFeature) -> None:
        self.f = feature

    def press(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        pass

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        pass

    def release(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        pass

    def click(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        self.f.probe(int(np.floor(y)), int(np.floor(x)))


class AnalysisFeature(Feature):
    key = "analysis"
    title = "Analysis (J, basis)"
    area = Area.BottomDockWidgetArea
    tab_with = "manifold"

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx)
        tip = "Click a pixel: the adaptive filter the denoiser applies there"
        ctx.add_tool(ToolSpec("probe", "&Probe a denoiser", "P", tip, lambda: ProbeHandler(self)))
        self.widget = QWidget()
        lay = QHBoxLayout(self.widget)
        left = QFormLayout()
        self.method = QComboBox()
        for n in denoise.names():
            self.method.addItem(denoise.get_class(n).title or n, n)
        i = self.method.findData("bfcnn")
        self.method.setCurrentIndex(max(i, 0))
        left.addRow("Denoiser", self.method)
        self.sigma = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.sigma.setRange(1.0, 100.0)
        self.sigma.setValue(25.0)
        left.addRow("Noise σ (×255)", self.sigma)
        self.k = QSpinBox()
        self.k.setRange(1, 64)
        self.k.setValue(16)
        left.addRow("Eigenvectors shown", self.k)
        self.basis_button = QPushButton("Basis of the view (J on a 32² crop)")
        self.basis_button.clicked.connect(self.compute_basis)
        left.addRow(self.basis_button)
        self.sweep_button = QPushButton("σ sweep of tr J")
        self.sweep_button.clicked.connect(self.sweep)
        left.addRow(self.sweep_button)
        self.info = QLabel("Press P and click a pixel to see its adaptive filter.")
        self.info.setWordWrap(True)
        left.addRow(self.info)
        box = QWidget()
        box.setLayout(left)
        lay.addWidget(box, 1)
        views = pg.GraphicsLayoutWidget()
        self.filter_vb = views.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.filter_item = pg.ImageItem(axisOrder="row-major")
        self.filter_item.setColorMap(pg.colormap.get("CET-D1"))
        self.filter_vb.addItem(self.filter_item)
        self.basis_vb = views.addViewBox(row=0, col=1, lockAspect=True, invertY=True, enableMenu=False)
        self.basis_item = pg.ImageItem(axisOrder="row-major")
        self.basis_vb.addItem(self.basis_item)
        lay.addWidget(views, 2)
        plots = QVBoxLayout()
        self.spectrum = pg.PlotWidget(title="shrinkage factors λ_k")
        self.spectrum.setLabel("bottom", "k")
        self.spectrum_curve = self.spectrum.plot([], [], pen=pg.mkPen((255, 170, 60), width=2))
        self.trace_plot = pg.PlotWidget(title="tr J against σ")
        self.trace_plot.setLabel("bottom", "σ (×255)")
        self.trace_curve = self.trace_plot.plot([], [], pen=pg.mkPen((90, 170, 255), width=2), symbol="o")
        plots.addWidget(self.spectrum)
        plots.addWidget(self.trace_plot)
        pw = QWidget()
        pw.setLayout(plots)
        lay.addWidget(pw, 2)
        self.runner = LatestRunner(self)
        self.runner.ready.connect(self._filter_ready)
        self.runner.error.connect(lambda m: self.info.setText(f"Adaptive filter: {m}"))
        self.pixel: tuple[int, int] | None = None
        self.basis: Any = None
        self.method.currentIndexChanged.connect(lambda _: self._reprobe())
        self.sigma.valueChanged.connect(lambda _: self._reprobe())

    def dock(self) -> QWidget:
        return self.widget

    def actions(self) -> list[QAction]:
        return [self.action("Adaptive basis of the view", lambda: (self.ctx.raise_dock(self.key),
                                                                   self.compute_basis()), menu="Run")]

    def _denoiser(self) -> Any:
        return denoise.get(self.method.currentData(), device=self.ctx.device)

    def sigma_value(self) -> float:
        return float(self.sigma.value()) / 255.0

    # -- adaptive filter at a pixel ---------------------------------------------------------
    def probe(self, row: int, col: int) -> bool:
        doc = self.doc
        if doc is None or not (0 <= row < doc.shape[0] and 0 <= col < doc.shape[1]):
            return False
        self.pixel = (row, col)
        image, sigma = doc.snapshot(), self.sigma_value()
        name, dev = self.method.currentData(), self.ctx.device
        crop = analysis.crop_around(image.shape, (row, col), BASIS_SIDE)

        def compute(token: Any) -> Any:
            den = denoise.get(name, device=dev)
            return analysis.adaptive_filter(den, image, sigma, (row, col), crop), analysis.filter_kind(den)

        self.runner.request(compute, (id(doc), row, col, name, sigma))
        self.ctx.raise_dock(self.key)
        return True

    def _reprobe(self) -> None:
        if self.pixel is not None and self.doc is not None:
            self.probe(*self.pixel)

    def _filter_ready(self, result: Any, tag: Any) -> None:
        if self.doc is None or tag[0] != id(self.doc):
            return
        filt, kind = result
        f = np.asarray(filt, np.float32)
        if f.ndim == 3:
            f = f.mean(axis=2)
        s = max(float(np.abs(f).max()), 1e-12)
        self.filter_item.setImage(f / s, autoLevels=False, levels=(-1, 1))
        self.filter_vb.autoRange()
        self.info.setText(f"Pixel (row {tag[1]}, col {tag[2]}): {kind}. Sum of weights {float(f.sum()):.3f}.")

    # -- basis and spectrum -------------------------------------------------------------
    def _view_crop(self) -> np.ndarray | None:
        doc = self.doc
        if doc is None:
            return None
        vr = self.ctx.canvas.visible_rect() or (0, 0, doc.shape[0], doc.shape[1])
        cy, cx = (vr[0] + vr[2]) // 2, (vr[1] + vr[3]) // 2
        top, left, h, w = analysis.crop_around(doc.shape, (cy, cx), BASIS_SIDE)
        crop = np.array(doc.image[top : top + h, left : left + w], np.float32)
        return crop[..., :3] if crop.ndim == 3 else crop

    def compute_basis(self) -> bool:
        crop = self._view_crop()
        if crop is None:
            return False
        den, sigma, k, doc = self._denoiser(), self.sigma_value(), int(self.k.value()), self.doc

        def done(res: Any) -> None:
            if self.doc is doc:
                self.show_basis(res)

        return self.ctx.run("Adaptive basis", lambda: analysis.basis_job(den, crop, sigma, k), done)

    def show_basis(self, res: Any) -> None:
        self.basis = res
        ev = np.asarray(res.eigenvalues, np.float64)
        self.spectrum_curve.setData(np.arange(1, ev.size + 1), ev)
        self.basis_item.setImage(to_display(_grid(np.asarray(res.basis, np.float32))), autoLevels=False,
                                 levels=(0, 255))
        self.basis_vb.autoRange()
        inside = float(np.mean((ev >= -1e-3) & (ev <= 1 + 1e-3)))
        self.info.setText(f"tr J = {float(res.trace):.1f} of {ev.size} (effective dimensionality); "
                          f"{inside * 100:.0f} % of λ_k in [0, 1]; J by {res.method}.")

    def sweep(self) -> bool:
        crop = self._view_crop()
        if crop is None:
            return False
        den, doc = self._denoiser(), self.doc
        sigmas = [s / 255.0 for s in SWEEP_SIGMAS]

        def done(r: Any) -> None:
            if self.doc is doc:
                self.trace_curve.setData(np.asarray(r.sigmas) * 255.0, np.asarray(r.traces))

        def job() -> Any:
            return analysis.trace_sweep_job(den, crop, sigmas, probes=8)

        return self.ctx.run("tr J against σ", job, done)

    def document_changed(self, doc: Document | None) -> None:
        self.runner.cancel()
        self.pixel, self.basis = None, None
        self.filter_item.clear()
        self.basis_item.clear()
        self.spectrum_curve.setData([], [])
        self.trace_curve.setData([], [])

    def shutdown(self) -> None:
        self.runner.stop()
