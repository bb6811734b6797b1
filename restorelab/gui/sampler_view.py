"""The sampler view (Algorithms 1 and 2 of Kadkhodaie & Simoncelli 2021) and the 2-D
manifold demo. The GUI only plots what the core's jobs yield:

- live: σ_t (effective noise) and h_t (step size) against t on a log axis, one
  ``PlotDataItem.setData`` per received batch (the worker sends ≤ 10 batches/s, every
  point included), y_t on the canvas every few iterations;
- after the run: a scrubber over the stored frames of y_t, the K samples, their mean and
  their per-pixel standard deviation (uncertainty map); "Apply" puts the shown image into
  the document (undoable), "Open as image" makes it a new document.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

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
    QScrollArea,
    QSlider,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from restorelab.gui import compat
from restorelab.gui.panels.params_panel import ParamForm
from restorelab.gui.worker import OOM_KEY, oom_fallback_job
from restorelab.jobs import Progress

if TYPE_CHECKING:
    from restorelab.gui.main_window import MainWindow

TASK_TITLES = {
    "sample": "Sample the prior (Algorithm 1)",
    "inpaint": "Inpaint the painted mask (Algorithm 2)",
    "pixels": "Missing random pixels (Algorithm 2)",
    "sr": "Super-resolution (Algorithm 2)",
    "deblur": "Deblurring (Algorithm 2)",
    "cs": "Compressive sensing (Algorithm 2)",
}


def _sampler(name: str) -> Any:
    return compat.attr("restorelab.prior", name) or compat.attr("restorelab.prior.sampler", name)


class SamplerView(QWidget):
    """Controls, live σ_t/h_t plot, frame scrubber and sample/mean/std viewer."""

    def __init__(self, win: MainWindow) -> None:
        super().__init__()
        self.win = win
        split = QSplitter(Qt.Orientation.Horizontal, self)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(split)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        top = QFormLayout()
        self.task = QComboBox()
        self.task.currentIndexChanged.connect(self._task_changed)
        top.addRow("Task", self.task)
        self.denoiser = QComboBox()
        self.denoiser.setToolTip("The denoiser whose implicit prior is sampled (the BF-CNN is the paper's)")
        top.addRow("Denoiser", self.denoiser)
        self.size = QSpinBox()
        self.size.setRange(8, 1024)
        self.size.setValue(64)
        self.size.setToolTip(
            "Algorithm 1: size of the drawn image; Algorithm 2: largest side of the crop used"
        )
        top.addRow("Size (px)", self.size)
        lv.addLayout(top)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        lv.addWidget(self.scroll, 1)
        self.run_button = QPushButton("Run sampler")
        self.run_button.clicked.connect(self.run)
        lv.addWidget(self.run_button)
        split.addWidget(left)

        mid = QWidget()
        mv = QVBoxLayout(mid)
        mv.setContentsMargins(0, 0, 0, 0)
        self.plot = pg.PlotWidget()
        self.plot.setLogMode(y=True)
        self.plot.setLabel("bottom", "iteration t")
        self.plot.setLabel("left", "σ_t, h_t")
        self.plot.addLegend(offset=(-10, 10))
        # live updates must stay cheap on the GUI thread: no auto-range (which re-renders
        # the axes at every point); the ranges grow by doubling, so axis pictures are cached;
        # no grid: replaying grid lines across the plot costs more than the curves
        self.plot.disableAutoRange()
        self.plot.setMouseEnabled(x=True, y=False)
        self._xmax = 64.0
        self._yrange = (-3.0, 0.5)
        self.sigma_curve = self.plot.plot([], [], pen=pg.mkPen((255, 170, 60), width=1), name="σ_t")
        self.h_curve = self.plot.plot([], [], pen=pg.mkPen((90, 170, 255), width=1), name="h_t")
        for c in (self.sigma_curve, self.h_curve):
            c.setSkipFiniteCheck(True)
        mv.addWidget(self.plot, 1)
        self.info = QLabel("")
        mv.addWidget(self.info)
        split.addWidget(mid)

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        self.thumb = pg.GraphicsLayoutWidget()
        self.thumb_vb = self.thumb.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.thumb_item = pg.ImageItem(axisOrder="row-major")
        self.thumb_vb.addItem(self.thumb_item)
        rv.addWidget(self.thumb, 1)
        self.scrub = QSlider(Qt.Orientation.Horizontal)
        self.scrub.setEnabled(False)
        self.scrub.setToolTip("Scrub through the stored y_t frames")
        self.scrub.valueChanged.connect(self._scrubbed)
        rv.addWidget(self.scrub)
        self.show_what = QComboBox()
        self.show_what.currentIndexChanged.connect(self._show_result)
        rv.addWidget(self.show_what)
        row = QHBoxLayout()
        self.apply_button = QPushButton("Apply to image")
        self.apply_button.clicked.connect(self.apply_result)
        self.open_button = QPushButton("Open as image")
        self.open_button.clicked.connect(self.open_result)
        row.addWidget(self.apply_button)
        row.addWidget(self.open_button)
        rv.addLayout(row)
        split.addWidget(right)
        split.setSizes([260, 420, 260])

        self.form: ParamForm | None = None
        self.t: list[float] = []
        self.sig: list[float] = []
        self.h: list[float] = []
        self.plot_updates: list[float] = []  # monotonic time of each curve update
        self.result: Any = None
        self._origin = (0, 0)
        self._crop_shape: tuple[int, ...] | None = None
        self._a_sample = QAction("Sample the prior (Algorithm 1)", self)
        self._a_sample.triggered.connect(lambda: self.run_task("sample"))
        self._a_inpaint = QAction("Inpaint the painted mask (Algorithm 2)", self)
        self._a_inpaint.setShortcut("Ctrl+Shift+I")
        self._a_inpaint.triggered.connect(lambda: self.run_task("inpaint"))
        self._set_result_enabled(False)
        self._set_ranges()
        self.refresh()

    # -- setup ------------------------------------------------------------------------------
    def actions_for_menu(self) -> list[QAction]:
        return [self._a_sample, self._a_inpaint]

    def available(self) -> bool:
        return _sampler("sample_job") is not None and bool(compat.denoiser_names())

    def refresh(self) -> None:
        ok = self.available()
        ops = compat.core("restorelab.prior.operators")
        tasks = ["sample"] + (
            [t for t in TASK_TITLES if t != "sample" and t in getattr(ops, "TASK_PARAMS", {})]
            if ops is not None
            else []
        )
        cur = self.task.currentData()
        self.task.blockSignals(True)
        self.task.clear()
        for t in tasks:
            self.task.addItem(TASK_TITLES[t], t)
        if cur is not None and self.task.findData(cur) >= 0:
            self.task.setCurrentIndex(self.task.findData(cur))
        self.task.blockSignals(False)
        names = compat.denoiser_names()
        curd = self.denoiser.currentData()
        self.denoiser.clear()
        dn = compat.core("restorelab.denoise")
        for n in names:
            self.denoiser.addItem(getattr(dn.get_class(n), "title", "") or n, n)
        pref = curd or ("bfcnn" if "bfcnn" in names else None)
        if pref and self.denoiser.findData(pref) >= 0:
            self.denoiser.setCurrentIndex(self.denoiser.findData(pref))
        why = "" if ok else compat.why("restorelab.prior.sampler")
        for w in (self.run_button, self._a_sample, self._a_inpaint):
            w.setEnabled(ok)
            w.setToolTip(why)
        self._task_changed()

    def _task_changed(self, *_: Any) -> None:
        task = self.task.currentData() or "sample"
        name = "SAMPLER_PARAMS" if task == "sample" else "INVERSE_PARAMS"
        params = tuple(_sampler(name) or ())
        ops = compat.core("restorelab.prior.operators")
        if task not in ("sample", "inpaint") and ops is not None:
            params += tuple(getattr(ops, "TASK_PARAMS", {}).get(task, ()))
        self.form = ParamForm(params)
        self.scroll.setWidget(self.form)

    def _set_result_enabled(self, on: bool) -> None:
        for w in (self.scrub, self.show_what, self.apply_button, self.open_button):
            w.setEnabled(on)

    # -- running ----------------------------------------------------------------------------
    def run_task(self, task: str) -> bool:
        i = self.task.findData(task)
        if i >= 0:
            self.task.setCurrentIndex(i)
        self.win.sampler_dock.show()
        self.win.sampler_dock.raise_()
        return self.run()

    def _crop(self) -> tuple[np.ndarray, tuple[int, int]]:
        """The region Algorithm 2 works on: the visible part of the image, at most size²."""
        doc = self.win.doc
        n = self.size.value()
        H, W = doc.shape[:2]
        m = doc.mask_bool()
        if self.task.currentData() == "inpaint" and m.any():
            ys, xs = np.nonzero(m)
            cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
        else:
            vr = self.win.canvas.visible_rect() or (0, 0, H, W)
            cy, cx = (vr[0] + vr[2]) // 2, (vr[1] + vr[3]) // 2
        y0 = int(min(max(cy - n // 2, 0), max(H - n, 0)))
        x0 = int(min(max(cx - n // 2, 0), max(W - n, 0)))
        return doc.image[y0 : y0 + n, x0 : x0 + n].copy(), (y0, x0)

    def run(self) -> bool:
        """Start the sampler job; the σ_t curve fills while it runs."""
        win = self.win
        task = self.task.currentData() or "sample"
        den_name = self.denoiser.currentData()
        if den_name is None or not self.available():
            return False
        values = self.form.values() if self.form else {}
        dev = win.device_pref
        n = self.size.value()
        if task == "sample":
            job_fn = _sampler("sample_job")
            channels = 3 if win.doc is not None and win.doc.image.ndim == 3 else 1
            self._origin = (0, 0)
            self._crop_shape = None

            def make(d: str) -> Any:
                return job_fn(
                    win._denoiser(den_name, {}, d), shape=(n, n), channels=channels, device=d, **values
                )
        else:
            if win.doc is None:
                return False
            job_fn = _sampler("inverse_job")
            crop, origin = self._crop()
            self._origin, self._crop_shape = origin, crop.shape
            mask = win.doc.mask_bool()[
                origin[0] : origin[0] + crop.shape[0], origin[1] : origin[1] + crop.shape[1]
            ]
            if task == "inpaint" and not mask.any():
                from restorelab.gui import dialogs

                dialogs.info(win, "Inpainting", "Paint the region to fill first (B), then run again.")
                return False
            ops = compat.core("restorelab.prior.operators")
            sampler_keys = {p.name for p in (_sampler("INVERSE_PARAMS") or ())}
            svals = {k: v for k, v in values.items() if k in sampler_keys}
            tvals = {k: v for k, v in values.items() if k not in sampler_keys}
            mask = mask.copy()

            def make(d: str) -> Any:
                op = ops.make(task, crop.shape[:2], mask=mask if task == "inpaint" else None, **tvals)
                return job_fn(win._denoiser(den_name, {}, d), op, crop, device=d, **svals)

        def factory() -> Any:
            if dev == "cpu":
                return make("cpu")
            # CUDA out of memory: start again on the CPU (a sampler run cannot be tiled)
            return oom_fallback_job(lambda: make(dev), cpu=lambda: make("cpu"))

        self.t.clear()
        self.sig.clear()
        self.h.clear()
        self.plot_updates.clear()
        self.sigma_curve.setData([], [])
        self.h_curve.setData([], [])
        self._xmax = 64.0
        sl = float(values.get("sigma_L", 0.01) or 0.01)
        h0 = float(values.get("h0", 0.01) or 0.01)
        s0 = float(values.get("sigma0", 1.0) or 1.0)
        self._yrange = (float(np.floor(np.log10(min(sl, h0)))), float(np.ceil(np.log10(max(s0, 1.0)) + 0.01)))
        self._set_ranges()
        self.result = None
        self._set_result_enabled(False)
        self._t0 = time.monotonic()
        win.meta_pending = {"task": task, "denoiser": den_name, "params": values}
        return win.start_job(TASK_TITLES[task], factory, self._done, on_progress=self._progress)

    def _progress(self, batch: list[Progress]) -> None:
        preview = None
        for ev in batch:
            if (ev.data or {}).get(OOM_KEY):  # the run starts again on the CPU: a new curve
                self.t.clear()
                self.sig.clear()
                self.h.clear()
            if ev.sigma is not None and not (ev.data or {}).get("done"):
                self.t.append(float(ev.step))
                self.sig.append(max(float(ev.sigma), 1e-12))
                self.h.append(max(float(ev.h), 1e-12) if ev.h is not None else np.nan)
            if ev.preview is not None:
                preview = ev.preview
        if self.t:
            self.sigma_curve.setData(self.t, self.sig)
            if not np.all(np.isnan(self.h)):
                self.h_curve.setData(self.t, self.h)
            self._grow_ranges()
            self.plot_updates.append(time.monotonic())
            self.info.setText(
                f"t = {int(self.t[-1])}   σ_t = {self.sig[-1] * 255:.2f}/255   h_t = {self.h[-1]:.3g}"
            )
        if preview is not None:
            img = np.asarray(preview)
            self.thumb_item.setImage(_disp(img), autoLevels=False, levels=(0, 255))
            if self._crop_shape is not None and img.shape[:2] == self._crop_shape[:2]:
                self.win.canvas.show_preview(img, self._origin)

    def _set_ranges(self) -> None:
        self.plot.setXRange(0, self._xmax, padding=0.02)
        self.plot.setYRange(*self._yrange, padding=0.02)

    def _grow_ranges(self) -> None:
        """Double the t axis / widen the log σ axis only when a point falls outside."""
        changed = False
        while self.t[-1] > self._xmax:
            self._xmax *= 2
            changed = True
        vals = [v for v in (self.sig[-1], self.h[-1]) if v == v and v > 0]
        lo, hi = self._yrange
        for v in vals:
            lv = float(np.log10(v))
            if lv < lo:
                lo, changed = np.floor(lv), True
            if lv > hi:
                hi, changed = np.ceil(lv), True
        self._yrange = (lo, hi)
        if changed:
            self._set_ranges()

    def _done(self, result: Any) -> None:
        self.result = result
        self.win.canvas.show_preview(None)
        frames = list(getattr(result, "frames", []) or [])
        self.scrub.blockSignals(True)
        self.scrub.setRange(0, max(len(frames) - 1, 0))
        self.scrub.setValue(max(len(frames) - 1, 0))
        self.scrub.blockSignals(False)
        self.show_what.blockSignals(True)
        self.show_what.clear()
        for k in range(len(getattr(result, "samples", []) or [])):
            self.show_what.addItem(f"sample {k + 1}", ("sample", k))
        self.show_what.addItem("mean of the samples", ("mean", 0))
        self.show_what.addItem("std (uncertainty map)", ("std", 0))
        self.show_what.blockSignals(False)
        self._set_result_enabled(True)
        self.scrub.setEnabled(len(frames) > 1)
        msg = getattr(result, "message", "")
        its = getattr(result, "iterations", len(self.t))
        self.info.setText(f"{its} iterations, {getattr(result, 'seconds', 0):.1f} s. {msg}")
        doc = self.win.doc
        if doc is not None:
            doc.meta["last_sampler"] = dict(getattr(self.win, "meta_pending", {}), origin=list(self._origin))
            doc.meta["last_sampler_result"] = result  # samples, mean, std, log: for session files
        self._show_result()

    def shown_image(self) -> np.ndarray | None:
        r = self.result
        if r is None:
            return None
        kind, k = self.show_what.currentData() or ("sample", 0)
        if kind == "sample":
            return np.asarray(r.samples[k])
        if kind == "mean":
            return np.asarray(r.mean)
        std = np.asarray(r.std)
        return std / max(float(std.max()), 1e-8)

    def _show_result(self, *_: Any) -> None:
        img = self.shown_image()
        if img is not None:
            self.thumb_item.setImage(_disp(img), autoLevels=False, levels=(0, 255))

    def _scrubbed(self, i: int) -> None:
        frames = list(getattr(self.result, "frames", []) or [])
        if 0 <= i < len(frames):
            t, img = frames[i]
            img = np.asarray(img)
            self.thumb_item.setImage(_disp(img), autoLevels=False, levels=(0, 255))
            self.info.setText(f"frame at t = {t}")
            if self._crop_shape is not None and img.shape[:2] == self._crop_shape[:2]:
                self.win.canvas.show_preview(img, self._origin)

    def apply_result(self) -> bool:
        """Put the shown sample/mean into the document (the crop it came from)."""
        doc, img = self.win.doc, self.shown_image()
        if doc is None or img is None or (self.show_what.currentData() or ("",))[0] == "std":
            return False
        if self._crop_shape is None:
            return self.open_result()
        y0, x0 = self._origin
        new = doc.image.copy()
        h, w = img.shape[:2]
        new[y0 : y0 + h, x0 : x0 + w] = img.reshape(new[y0 : y0 + h, x0 : x0 + w].shape)
        self.win.canvas.show_preview(None)
        doc.apply_image(new, f"Sampler: {self.task.currentText()}")
        return True

    def open_result(self) -> bool:
        img = self.shown_image()
        if img is None:
            return False
        from restorelab.gui.document import Document

        if not self.win._maybe_keep_changes():  # noqa: SLF001
            return False
        self.win.set_document(Document(np.clip(img, 0, 1)))
        return True


def _disp(img: np.ndarray) -> np.ndarray:
    from restorelab.gui.canvas import to_display

    return to_display(np.asarray(img, np.float32))


def manifold_params() -> tuple[Any, ...]:
    """The demo's declarations: the core's ``MANIFOLD_PARAMS`` when it has them, else the
    keyword arguments of ``manifold_demo_job`` declared here (one widget each)."""
    core_params = compat.attr("restorelab.prior.manifold", "MANIFOLD_PARAMS")
    if core_params:
        return tuple(core_params)
    from restorelab.params import Param

    curves = tuple(compat.attr("restorelab.prior.manifold", "CURVES") or ("spiral",))
    return (
        Param("curve", str, curves[0], choices=curves, help="the 1-D manifold the signals lie on"),
        Param("n_points", int, 50, lo=1, hi=400, help="number of signals (and trajectories)"),
        Param("seed", int, 0, lo=0, hi=2**31 - 1, help="random seed"),
        Param("grid", int, 128, lo=16, hi=512, help="density grid size"),
        Param("h0", float, 0.05, lo=1e-3, hi=1.0, log=True, group="schedule", help="h₀ of the ascent"),
        Param(
            "beta", float, 1.0, lo=1e-3, hi=1.0, log=True, group="schedule", help="β (1: no injected noise)"
        ),
        Param("max_iter", int, 2000, lo=1, hi=20000, group="schedule", help="iteration cap"),
    )


class ManifoldPanel(QWidget):
    """The 2-D manifold demo (Fig. 10 of Kadkhodaie & Simoncelli 2021): the density p(y)
    of the noisy signals at the chosen σ, the curve, and the trajectories of Algorithm 1
    (orange) and Algorithm 2 (cyan) drawn over it."""

    def __init__(self, win: MainWindow) -> None:
        super().__init__()
        self.win = win
        lay = QHBoxLayout(self)
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
        self.form: ParamForm | None = None
        self.data: dict[str, Any] | None = None
        self._action = QAction("2-D manifold demo", self)
        self._action.triggered.connect(self._menu_run)
        self.refresh()

    def _menu_run(self) -> None:
        self.win.manifold_dock.show()
        self.win.manifold_dock.raise_()
        self.run()

    def actions_for_menu(self) -> list[QAction]:
        return [self._action]

    def _fn(self) -> Any:
        return compat.attr("restorelab.prior.manifold", "manifold_demo_job")

    def refresh(self) -> None:
        ok = self._fn() is not None
        self.form = ParamForm(manifold_params() if ok else ())
        self.form_box.setWidget(self.form)
        for w in (self.run_button, self._action):
            w.setEnabled(ok)
            w.setToolTip("" if ok else compat.why("restorelab.prior.manifold"))

    def run(self) -> bool:
        fn = self._fn()
        if fn is None:
            return False
        values = self.form.values() if self.form else {}
        return self.win.start_job("2-D manifold demo", lambda: fn(**values), self.show_data)

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
