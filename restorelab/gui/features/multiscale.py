"""Multiscale: ``restorelab.prior.decompose`` with the chosen denoiser, the layers as
thumbnails, one gain slider per scale, live recomposition on the preview runner, Apply as
one undoable step prepared on the worker. A decomposition belongs to the document it was
made from: opening another image drops it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QPushButton, QVBoxLayout, QWidget
from superqt import QLabeledDoubleSlider

from restorelab import denoise, prior
from restorelab.gui.context import AppContext
from restorelab.gui.display import to_display
from restorelab.gui.document import Document
from restorelab.gui.features.base import Area, Feature
from restorelab.gui.panels.params_panel import Debouncer, ParamForm
from restorelab.gui.runner import LatestRunner
from restorelab.gui.undo import ImageEdit
from restorelab.safety import oom_fallback_job


class MultiscaleFeature(Feature):
    key = "multiscale"
    title = "Multiscale"
    area = Area.RightDockWidgetArea
    tab_with = "denoise"

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx)
        w = self.widget = QWidget()
        lay = QVBoxLayout(w)
        form = QFormLayout()
        self.denoiser = QComboBox()
        for n in denoise.names():
            self.denoiser.addItem(denoise.get_class(n).title or n, n)
        form.addRow("Denoiser", self.denoiser)
        lay.addLayout(form)
        self.form = ParamForm(prior.DECOMPOSE_PARAMS)
        lay.addWidget(self.form)
        self.run_button = QPushButton("Decompose")
        self.run_button.clicked.connect(self.run)
        lay.addWidget(self.run_button)
        self.layers = pg.GraphicsLayoutWidget()
        self.layers.setMinimumHeight(120)
        lay.addWidget(self.layers, 1)
        self.gain_box = QFormLayout()
        lay.addLayout(self.gain_box)
        self.apply_button = QPushButton("Apply recomposition")
        self.apply_button.clicked.connect(self.apply)
        self.apply_button.setEnabled(False)
        lay.addWidget(self.apply_button)
        self.decomp: Any = None
        self._source: Document | None = None
        self.sliders: list[QLabeledDoubleSlider] = []
        self.recomposed: np.ndarray | None = None
        self.runner = LatestRunner(self)
        self.runner.ready.connect(self._recomposed)
        self._debounce = Debouncer(40, self._recompose, self)

    def dock(self) -> QWidget:
        return self.widget

    def actions(self) -> list[QAction]:
        return [
            self.action(
                "Multiscale decomposition", lambda: (self.ctx.raise_dock(self.key), self.run()), menu="Run"
            )
        ]

    def run(self) -> bool:
        doc, name = self.doc, self.denoiser.currentData()
        if doc is None or name is None:
            return False
        x, values, dev = doc.snapshot(), self.form.values(), self.ctx.device

        def make(d: str) -> Any:
            return prior.decompose_job(x, denoise.get(name, device=d), **values)

        def factory() -> Any:
            return oom_fallback_job(make, dev)  # out of GPU memory: again on the CPU

        def done(dec: Any) -> None:
            if self.doc is doc:
                self.show_decomposition(dec, doc)

        return self.ctx.run("Multiscale decomposition", factory, done)

    def show_decomposition(self, dec: Any, doc: Document | None = None) -> None:
        self.decomp, self._source = dec, doc or self.doc
        self.layers.clear()
        res = list(dec.residuals)
        for i, r in enumerate([*res, dec.base]):
            r = np.asarray(r, np.float32)
            vb = self.layers.addViewBox(
                row=i // 3, col=i % 3, lockAspect=True, invertY=True, enableMenu=False
            )
            it = pg.ImageItem(axisOrder="row-major")
            if i < len(res):
                s = max(float(np.abs(r).max()), 1e-6)
                it.setImage(to_display(0.5 + 0.5 * r / s), autoLevels=False, levels=(0, 255))
            else:
                it.setImage(to_display(r), autoLevels=False, levels=(0, 255))
            vb.addItem(it)
        self._clear_sliders()
        for i in range(len(res)):
            s = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
            s.setRange(0.0, 4.0)
            s.setValue(1.0)
            s.setDecimals(2)
            s.setToolTip("Gain of this scale's detail layer (1 = unchanged)")
            s.valueChanged.connect(self._debounce.poke)
            self.gain_box.addRow(QLabel(f"scale {i + 1}"), s)
            self.sliders.append(s)
        self.apply_button.setEnabled(True)

    def _clear_sliders(self) -> None:
        while self.gain_box.rowCount():
            self.gain_box.removeRow(0)
        self.sliders = []

    def gains(self) -> list[float]:
        return [float(s.value()) for s in self.sliders]

    def _recompose(self) -> None:
        dec = self.decomp
        if dec is None or self.ctx.busy:
            return
        g = self.gains()

        def compute(token: Any) -> Any:
            out = np.asarray(dec.recompose(g), np.float32)
            return out, to_display(out)

        self.runner.request(compute, tuple(g))

    def _recomposed(self, result: Any, tag: Any) -> None:
        out, disp = result
        doc = self.doc
        if doc is not None and doc is self._source and out.shape == doc.image.shape and not self.ctx.busy:
            self.recomposed = out
            self.ctx.preview(out, owner=self, display=disp)

    def apply(self) -> bool:
        doc, dec = self.doc, self.decomp
        if doc is None or dec is None or doc is not self._source:
            return False
        gains, old = self.gains(), doc.snapshot()
        self.runner.cancel()

        def job() -> Any:
            out = np.clip(np.asarray(dec.recompose(gains), np.float32), 0, 1)
            return ImageEdit(old, out)
            yield

        def done(e: ImageEdit) -> None:
            if self.doc is doc:
                doc.apply_edit(e, "Multiscale detail gains " + ", ".join(f"{g:.2f}" for g in gains))

        return self.ctx.run("Multiscale recomposition", job, done)

    def document_changed(self, doc: Document | None) -> None:
        """A decomposition of another image is of no use here: drop it."""
        self.runner.cancel()
        self.decomp, self._source, self.recomposed = None, None, None
        self.layers.clear()
        self._clear_sliders()
        self.apply_button.setEnabled(False)

    def shutdown(self) -> None:
        self.runner.stop()
