"""The 2-D manifold demo (Fig. 10 of Kadkhodaie & Simoncelli 2021): signals on a curve,
the exact MMSE denoiser of that prior, the density of noisy signals and the trajectories
of Algorithms 1 and 2 that end on the manifold. It does not depend on the document."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QPushButton, QScrollArea, QVBoxLayout, QWidget

from restorelab.gui.context import AppContext
from restorelab.gui.features.base import Area, Feature
from restorelab.gui.panels.params_panel import ParamForm
from restorelab.prior import manifold


class ManifoldFeature(Feature):
    """The 2-D manifold demo (Fig. 10 of Kadkhodaie & Simoncelli 2021): the density p(y)
    of the noisy signals at the chosen σ, the curve, and the trajectories of Algorithm 1
    (orange) and Algorithm 2 (cyan) drawn over it."""

    key = "manifold"
    title = "2-D manifold demo"
    area = Area.BottomDockWidgetArea
    tab_with = "sampler"

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx)
        self.widget = QWidget()
        lay = QHBoxLayout(self.widget)
        lay.setContentsMargins(2, 2, 2, 2)
        left = QVBoxLayout()
        self.form_box = QScrollArea()
        self.form_box.setWidgetResizable(True)
        left.addWidget(self.form_box, 1)
        self.level = QComboBox()
        self.level.setToolTip("Which noise level's density is drawn")
        self.level.currentIndexChanged.connect(lambda _: self._draw())
        left.addWidget(self.level)
        self.run_button = QPushButton("Run the demo")
        self.run_button.clicked.connect(self.run)
        left.addWidget(self.run_button)
        lay.addLayout(left, 1)
        self.plot = pg.PlotWidget()
        self.plot.setAspectLocked(True)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.addLegend(offset=(-10, 10))
        lay.addWidget(self.plot, 3)
        self.form = ParamForm(manifold.MANIFOLD_PARAMS)
        self.form_box.setWidget(self.form)
        self.data: dict[str, Any] | None = None

    def dock(self) -> QWidget:
        return self.widget

    def actions(self) -> list[QAction]:
        return [
            self.action("2-D manifold demo", lambda: (self.ctx.raise_dock(self.key), self.run()), menu="Run")
        ]

    def run(self) -> bool:
        values = self.form.values()
        return self.ctx.run("2-D manifold demo", lambda: manifold.manifold_demo_job(**values), self.show_data)

    def show_data(self, data: Any) -> None:
        """Keep a ``manifold_demo`` result and draw it."""
        self.data = dict(data)
        sig = np.atleast_1d(self.data.get("sigmas", []))
        self.level.blockSignals(True)
        self.level.clear()
        for j, s in enumerate(sig):
            self.level.addItem(f"density at σ = {float(s):g}", j)
        self.level.setCurrentIndex(self.level.count() - 1)  # the sharpest density first
        self.level.blockSignals(False)
        self._draw()

    def _draw(self) -> None:
        d = self.data
        if d is None:
            return
        from PySide6.QtCore import QRectF

        self.plot.clear()
        dens = d.get("density")
        if dens is not None:
            dens = np.asarray(dens, np.float32)
            j = self.level.currentData() or 0
            img = dens[j] if dens.ndim == 3 else dens
            item = pg.ImageItem(axisOrder="row-major")
            item.setImage(np.sqrt(img / max(float(img.max()), 1e-12)), autoLevels=False, levels=(0, 1))
            item.setColorMap(pg.colormap.get("viridis"))
            gx, gy = np.asarray(d["grid_x"]), np.asarray(d["grid_y"])
            item.setRect(QRectF(gx[0], gy[0], gx[-1] - gx[0], gy[-1] - gy[0]))
            item.setZValue(-10)
            self.plot.addItem(item)
        c = np.asarray(d["curve"])
        self.plot.plot(c[:, 0], c[:, 1], pen=pg.mkPen((255, 255, 255), width=2), name="manifold")
        for key, color, label in (
            ("traj_alg1", (255, 150, 60, 170), "Algorithm 1"),
            ("traj_alg2", (80, 220, 255, 170), "Algorithm 2"),
        ):
            tr = d.get(key)
            if tr is None:
                continue
            tr = np.asarray(tr)
            # one item for all trajectories: NaN rows separate them
            sep = np.full((tr.shape[0], 1, 2), np.nan)
            flat = np.concatenate([tr, sep], axis=1).reshape(-1, 2)
            self.plot.plot(flat[:, 0], flat[:, 1], pen=pg.mkPen(color, width=1), connect="finite", name=label)
        for key, brush in (("end_alg1", (255, 150, 60)), ("end_alg2", (80, 220, 255))):
            e = d.get(key)
            if e is not None:
                e = np.asarray(e)
                self.plot.plot(
                    e[:, 0], e[:, 1], pen=None, symbol="o", symbolSize=5, symbolBrush=brush, symbolPen=None
                )
        if "grid_x" in d and "grid_y" in d:
            gx, gy = np.asarray(d["grid_x"]), np.asarray(d["grid_y"])
            self.plot.setRange(xRange=(gx[0], gx[-1]), yRange=(gy[0], gy[-1]), padding=0.02)
