"""Multiscale panel: ``restorelab.prior.decompose`` with the chosen denoiser, the layers as
thumbnails, one gain slider per scale, live recomposition (``Decomposition.recompose``)
shown on the canvas, Apply as one undoable step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from restorelab.gui import compat
from restorelab.gui.panels.params_panel import Debouncer, ParamForm
from restorelab.gui.worker import LatestRunner, oom_fallback_job

if TYPE_CHECKING:
    from restorelab.gui.main_window import MainWindow


def _decompose() -> Any:
    return compat.attr("restorelab.prior", "decompose_job")


class MultiscalePanel(QWidget):
    def __init__(self, win: MainWindow) -> None:
        super().__init__()
        self.win = win
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.denoiser = QComboBox()
        form.addRow("Denoiser", self.denoiser)
        lay.addLayout(form)
        params = compat.attr("restorelab.prior", "DECOMPOSE_PARAMS") or ()
        self.form = ParamForm(params)
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
        self.sliders: list[QLabeledDoubleSlider] = []
        self.recomposed: np.ndarray | None = None
        self.runner = LatestRunner(self)
        self.runner.ready.connect(self._recomposed)
        self._debounce = Debouncer(40, self._recompose, self)
        self._action = QAction("Multiscale decomposition", self)
        self._action.triggered.connect(
            lambda: (win.multiscale_dock.show(), win.multiscale_dock.raise_(), self.run())
        )
        self.refresh()

    def actions_for_menu(self) -> list[QAction]:
        return [self._action]

    def refresh(self) -> None:
        ok = _decompose() is not None and bool(compat.denoiser_names())
        cur = self.denoiser.currentData()
        self.denoiser.clear()
        dn = compat.core("restorelab.denoise")
        for n in compat.denoiser_names():
            self.denoiser.addItem(getattr(dn.get_class(n), "title", "") or n, n)
        if cur is not None and self.denoiser.findData(cur) >= 0:
            self.denoiser.setCurrentIndex(self.denoiser.findData(cur))
        for w in (self.run_button, self._action):
            w.setEnabled(ok)
            w.setToolTip("" if ok else compat.why("restorelab.prior"))

    def run(self) -> bool:
        doc, fn = self.win.doc, _decompose()
        name = self.denoiser.currentData()
        if doc is None or fn is None or name is None:
            return False
        x = doc.image.copy()
        values, dev = self.form.values(), self.win.device_pref

        def make(d: str) -> Any:
            from restorelab import denoise

            return fn(x, denoise.get(name, device=d), **values)

        def factory() -> Any:
            if dev == "cpu":
                return make("cpu")
            return oom_fallback_job(lambda: make(dev), cpu=lambda: make("cpu"))

        return self.win.start_job("Multiscale decomposition", factory, self.show_decomposition)

    def show_decomposition(self, dec: Any) -> None:
        from restorelab.gui.canvas import to_display

        self.decomp = dec
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
        while self.gain_box.rowCount():
            self.gain_box.removeRow(0)
        self.sliders = []
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

    def gains(self) -> list[float]:
        return [float(s.value()) for s in self.sliders]

    def _recompose(self) -> None:
        dec = self.decomp
        if dec is None:
            return
        g = self.gains()
        self.runner.request(lambda token: dec.recompose(g), tuple(g))

    def _recomposed(self, out: Any, tag: Any) -> None:
        self.recomposed = np.asarray(out, np.float32)
        doc = self.win.doc
        if doc is not None and self.recomposed.shape == doc.image.shape:
            self.win.canvas.show_preview(self.recomposed)

    def apply(self) -> bool:
        doc, dec = self.win.doc, self.decomp
        if doc is None or dec is None:
            return False
        out = np.clip(np.asarray(dec.recompose(self.gains()), np.float32), 0, 1)
        if out.shape != doc.image.shape:
            return False
        self.win.canvas.show_preview(None)
        doc.apply_image(out, "Multiscale detail gains " + ", ".join(f"{g:.2f}" for g in self.gains()))
        return True

    def shutdown(self) -> None:
        self.runner.stop()
