"""The prior sampler (Algorithms 1 and 2 of Kadkhodaie & Simoncelli 2021). The GUI only
plots what the core's jobs yield:

- live: σ_t (effective noise) and h_t (step size) against t on a log axis, one
  ``PlotDataItem.setData`` per received batch (the worker sends ≤ 10 batches/s, every
  point included), y_t on the canvas every few iterations;
- after the run: a scrubber over the stored frames of y_t, the K samples, their mean and
  their per-pixel standard deviation (uncertainty map); "Apply" puts the shown image into
  the document (undoable), "Open as image" makes it a new document.

A result belongs to the document it was computed on: opening another image clears it.
Inpainting runs :func:`restorelab.prior.inpaint.inpaint_job` on the whole painted mask: its
connected components, each in its own window with a context margin (long strokes tiled along
the mask), never a fixed-size crop that could leave part of the mask untouched. Its modes are
``fast`` (classical fill + a short Algorithm 2 refinement, the default), ``sample`` (full
Algorithm 2, K samples, their mean and an uncertainty map) and ``fill`` (the classical fill).
"""

from __future__ import annotations

import dataclasses
import time
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
    QScrollArea,
    QSlider,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from restorelab import denoise, prior
from restorelab.gui.context import AppContext
from restorelab.gui.display import to_display
from restorelab.gui.document import Document
from restorelab.gui.features.base import Area, Feature
from restorelab.gui.panels.params_panel import ParamForm
from restorelab.gui.undo import ImageEdit
from restorelab.jobs import Progress
from restorelab.prior import operators
from restorelab.safety import OOM_KEY, oom_fallback_job
from restorelab.sample_result import SampleResult
from restorelab.session import MethodChoice
from restorelab.workspace import Workspace

TASK_TITLES = {
    "sample": "Sample the prior (Algorithm 1)",
    "inpaint": "Inpaint the painted mask (fast / sample / classical fill)",
    "pixels": "Missing random pixels (Algorithm 2)",
    "sr": "Super-resolution (Algorithm 2)",
    "deblur": "Deblurring (Algorithm 2)",
    "cs": "Compressive sensing (Algorithm 2)",
}


class SamplerFeature(Feature):
    """Controls, live σ_t/h_t plot, frame scrubber and sample/mean/std viewer."""

    key = "sampler"
    title = "Prior sampler  (σ_t, h_t)"
    area = Area.BottomDockWidgetArea

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx)
        self.widget = QWidget()
        split = QSplitter(Qt.Orientation.Horizontal, self.widget)
        lay = QHBoxLayout(self.widget)
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
            "Algorithm 1: size of the drawn image; Algorithm 2 (not inpainting, whose region is the "
            "painted mask with a context margin): largest side of the crop of the view used"
        )
        self.size_label = QLabel("Size (px)")
        top.addRow(self.size_label, self.size)
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
        self.run_info: dict[str, Any] = {}
        self._origin = (0, 0)
        self._crop_shape: tuple[int, ...] | None = None
        self._source: Document | None = None
        self._a_sample = self.action(
            "Sample the prior (Algorithm 1)", lambda: self.run_task("sample"), menu="Run"
        )
        self._a_inpaint = self.action(
            "Inpaint the painted mask (Algorithm 2)",
            lambda: self.run_task("inpaint"),
            menu="Run",
            shortcut="Ctrl+Shift+I",
        )
        self._set_result_enabled(False)
        self._set_ranges()
        self.refresh()

    # -- setup ------------------------------------------------------------------------------
    def dock(self) -> QWidget:
        return self.widget

    def actions(self) -> list[QAction]:
        return [self._a_sample, self._a_inpaint]

    def refresh(self) -> None:
        tasks = ["sample"] + [t for t in TASK_TITLES if t != "sample" and t in operators.TASK_PARAMS]
        cur = self.task.currentData()
        self.task.blockSignals(True)
        self.task.clear()
        for t in tasks:
            self.task.addItem(TASK_TITLES[t], t)
        if cur is not None and self.task.findData(cur) >= 0:
            self.task.setCurrentIndex(self.task.findData(cur))
        self.task.blockSignals(False)
        names = denoise.names()
        curd = self.denoiser.currentData()
        self.denoiser.clear()
        for n in names:
            self.denoiser.addItem(denoise.get_class(n).title or n, n)
        pref = curd or ("bfcnn" if "bfcnn" in names else None)
        if pref and self.denoiser.findData(pref) >= 0:
            self.denoiser.setCurrentIndex(self.denoiser.findData(pref))
        self._task_changed()

    def _task_changed(self, *_: Any) -> None:
        task = self.task.currentData() or "sample"
        if task == "inpaint":
            from restorelab.prior.inpaint import INPAINT_PARAMS

            params: tuple[Any, ...] = tuple(INPAINT_PARAMS)
        else:
            params = tuple(prior.SAMPLER_PARAMS if task == "sample" else prior.INVERSE_PARAMS)
        if task not in ("sample", "inpaint"):
            params += tuple(operators.TASK_PARAMS.get(task, ()))
        self.form = ParamForm(params)
        self.scroll.setWidget(self.form)
        inpaint = task == "inpaint"
        self.size.setVisible(not inpaint)
        self.size_label.setVisible(not inpaint)

    def _set_result_enabled(self, on: bool) -> None:
        for w in (self.scrub, self.show_what, self.apply_button, self.open_button):
            w.setEnabled(on)
        if on:
            self._update_apply()

    def _update_apply(self) -> None:
        """Apply puts a sample or the mean into the image; the std map is not an image."""
        kind = (self.show_what.currentData() or ("sample", 0))[0]
        ok = self.result is not None and kind != "std" and self.doc is not None and self.doc is self._source
        self.apply_button.setEnabled(ok)
        self.apply_button.setToolTip(
            ""
            if ok
            else "The uncertainty map is not an image to apply; choose a sample or the mean"
            if kind == "std"
            else "The result belongs to another image"
        )

    # -- running ----------------------------------------------------------------------------
    def run_task(self, task: str) -> bool:
        i = self.task.findData(task)
        if i >= 0:
            self.task.setCurrentIndex(i)
        self.ctx.raise_dock(self.key)
        return self.run()

    def _crop(self) -> tuple[np.ndarray, tuple[int, int]]:
        """The region Algorithm 2 works on for the tasks other than inpainting: the centre of
        the view, at most size² (inpainting works on the whole painted mask)."""
        doc = self.doc
        assert doc is not None
        H, W = doc.shape[:2]
        n = self.size.value()
        vr = self.ctx.canvas.visible_rect() or (0, 0, H, W)
        cy, cx = (vr[0] + vr[2]) // 2, (vr[1] + vr[3]) // 2
        y0 = int(min(max(cy - n // 2, 0), max(H - n, 0)))
        x0 = int(min(max(cx - n // 2, 0), max(W - n, 0)))
        return doc.image[y0 : y0 + n, x0 : x0 + n].copy(), (y0, x0)

    def run(self) -> bool:
        """Start the sampler job; the σ_t curve fills while it runs."""
        task = self.task.currentData() or "sample"
        den_name = self.denoiser.currentData()
        if den_name is None or self.ctx.busy:
            return False
        values = self.form.values() if self.form else {}
        dev = self.ctx.device
        n = self.size.value()
        doc = self.doc
        if task == "sample":
            channels = 3 if doc is not None and doc.image.ndim == 3 else 1
            origin: tuple[int, int] = (0, 0)
            crop_shape: tuple[int, ...] | None = None

            def make(d: str) -> Any:
                return prior.sample_job(
                    denoise.get(den_name, device=d), shape=(n, n), channels=channels, device=d, **values
                )
        elif task == "inpaint":
            if doc is None:
                return False
            hole = doc.mask_bool().copy()
            if not hole.any():
                self.ctx.info("Inpainting", "Paint the region to fill first (B), then run again.")
                return False
            image = doc.image.copy()
            origin, crop_shape = (0, 0), image.shape
            ivals = dict(values)

            def make(d: str) -> Any:
                return _inpaint_view_job(image, hole, denoise.get(den_name, device=d), d, ivals)
        else:
            if doc is None:
                return False
            crop, origin = self._crop()
            crop_shape = crop.shape
            sampler_keys = {p.name for p in prior.INVERSE_PARAMS}
            svals = {k: v for k, v in values.items() if k in sampler_keys}
            tvals = {k: v for k, v in values.items() if k not in sampler_keys}

            def make(d: str) -> Any:
                op = operators.make(task, crop.shape[:2], **tvals)
                return prior.inverse_job(denoise.get(den_name, device=d), op, crop, device=d, **svals)

        def factory() -> Any:
            return oom_fallback_job(make, dev)  # out of GPU memory: again on the CPU

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
        info = {"task": task, "denoiser": den_name, "params": values, "origin": list(origin)}

        def done(result: Any) -> None:
            if self.doc is not doc:
                return
            self._origin, self._crop_shape, self._source = origin, crop_shape, doc
            self.run_info = info
            doc.ws.sampler = as_sampler_result(result, info)
            self._done(result)

        def progress(batch: list[Progress]) -> None:
            self._origin, self._crop_shape = origin, crop_shape
            self._progress(batch)

        return self.ctx.run(TASK_TITLES[task], factory, done, on_progress=progress)

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
                self.ctx.preview(img, self._origin, owner=self)

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
        self.ctx.clear_preview(self)
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
        k = len(getattr(result, "samples", []) or [])
        self.show_what.addItem(
            "std (uncertainty map)" if k > 1 else "std (needs 2 or more samples)", ("std", 0)
        )
        self.show_what.blockSignals(False)
        self._set_result_enabled(True)
        self.scrub.setEnabled(len(frames) > 1)
        msg = getattr(result, "message", "")
        its = getattr(result, "iterations", len(self.t))
        self.info.setText(f"{its} iterations, {getattr(result, 'seconds', 0):.1f} s. {msg}")
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
        self.ctx.clear_preview(self)  # a scrubbed y_t frame is not the chosen result
        img = self.shown_image()
        if img is not None:
            self.thumb_item.setImage(_disp(img), autoLevels=False, levels=(0, 255))
            kind = (self.show_what.currentData() or ("sample", 0))[0]
            if kind == "std" and len(getattr(self.result, "samples", []) or []) < 2:
                self.info.setText(
                    "One sample: its standard deviation is 0 everywhere. Run K ≥ 2 samples "
                    "for an uncertainty map."
                )
        self._update_apply()

    def _scrubbed(self, i: int) -> None:
        frames = list(getattr(self.result, "frames", []) or [])
        if 0 <= i < len(frames):
            t, img = frames[i]
            img = np.asarray(img)
            self.thumb_item.setImage(_disp(img), autoLevels=False, levels=(0, 255))
            self.info.setText(f"frame at t = {t}")
            if (
                self._crop_shape is not None
                and img.shape[:2] == self._crop_shape[:2]
                and self._source is self.doc
            ):
                self.ctx.preview(img, self._origin, owner=self)

    def apply_result(self) -> bool:
        """Put the shown sample/mean into the document (the crop it came from)."""
        doc, img = self.doc, self.shown_image()
        if doc is None or img is None or (self.show_what.currentData() or ("",))[0] == "std":
            return False
        if doc is not self._source:
            self.ctx.status("The sampler result belongs to another image.")
            return False
        if self._crop_shape is None:
            return self.open_result()
        y0, x0 = self._origin
        h, w = img.shape[:2]
        patch = np.asarray(img, np.float32).reshape(doc.image[y0 : y0 + h, x0 : x0 + w].shape)
        e = ImageEdit.patch(doc.image, (y0, x0, y0 + h, x0 + w), patch)
        self.ctx.clear_preview(self)
        doc.apply_edit(e, f"Sampler: {self.task.currentText()}")
        return True

    def open_result(self) -> bool:
        img = self.shown_image()
        if img is None or not self.ctx.confirm_discard():
            return False
        return self.ctx.open_workspace(Workspace.from_image(np.clip(img, 0, 1)))

    # -- document, state --------------------------------------------------------------------
    def document_changed(self, doc: Document | None) -> None:
        """A result of another image must not be applied to this one: clear it."""
        self.result = None
        self.run_info = {}
        self._source = None
        self._crop_shape = None
        self.show_what.clear()
        self.thumb_item.clear()
        self._set_result_enabled(False)
        self.info.setText("")
        for a in (self._a_inpaint,):
            a.setEnabled(doc is not None)

    def state(self, ws: Workspace) -> None:
        task = self.task.currentData()
        if task is not None and self.form is not None:
            vals = dict(self.form.values())
            seed = vals.get("seed")
            ws.methods[self.key] = MethodChoice(
                self.key,
                str(task),
                vals,
                seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            )
            ws.extra["sampler"] = {"size": int(self.size.value()), "denoiser": self.denoiser.currentData()}

    def restore(self, ws: Workspace) -> list[str]:
        notes: list[str] = []
        m = self.method(ws)
        if m is not None:
            i = self.task.findData(m.name)
            if i < 0:
                notes.append(f"sampler task {m.name!r} is not available")
            else:
                self.task.setCurrentIndex(i)
                if self.form is not None:
                    self.form.set_values(dict(m.params))
            extra = ws.extra.get("sampler") or {}
            if isinstance(extra.get("size"), int):
                self.size.setValue(extra["size"])
            j = self.denoiser.findData(extra.get("denoiser"))
            if j >= 0:
                self.denoiser.setCurrentIndex(j)
        r = ws.sampler
        if r is not None and r.mean is not None and r.std is not None:
            self._show_saved(r)
        return notes

    def _show_saved(self, r: SampleResult) -> None:
        """Put a restored sampler result back: the σ_t / h_t curves, the samples, their mean,
        the uncertainty map and the trajectory frames."""
        rows = [row for row in r.log if np.isfinite(row[1]) and np.isfinite(row[2])]
        self.t[:] = [float(t) for t, _, _ in rows]
        self.sig[:] = [max(float(v), 1e-12) for _, v, _ in rows]
        self.h[:] = [max(float(v), 1e-12) for _, _, v in rows]
        if self.t:
            self.sigma_curve.setData(self.t, self.sig)
            self.h_curve.setData(self.t, self.h)
            self._grow_ranges()
        origin = r.params.get("origin")
        if isinstance(origin, list) and len(origin) == 2 and all(isinstance(v, int) for v in origin):
            self._origin, self._crop_shape = (origin[0], origin[1]), tuple(r.mean.shape)
        else:
            self._origin, self._crop_shape = (0, 0), None
        self._source = self.doc
        self.run_info = {
            "task": r.method,
            "denoiser": r.params.get("denoiser"),
            "origin": origin,
            "params": {k: v for k, v in r.params.items() if k not in ("denoiser", "origin")},
        }
        self._done(r)


def _inpaint_view_job(image: np.ndarray, hole: np.ndarray, den: Any, device: str,
                      values: dict[str, Any]) -> Any:
    """:func:`restorelab.prior.inpaint.inpaint_job` on the whole image, its result as the
    view and the session keep it (:class:`SampleResult`: samples, their mean, the
    uncertainty map, the σ_t log); runs on the worker thread."""
    from restorelab.prior.inpaint import inpaint_job

    alpha = image[:, :, 3:] if image.ndim == 3 and image.shape[2] == 4 else None
    res = yield from inpaint_job(image, hole, den, device=device, **values)

    def full(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, np.float32)
        return np.concatenate([a, alpha], axis=2) if alpha is not None else a

    samples = [full(s) for s in res.samples] or [full(res.image)]
    std = res.std if res.std is not None else np.zeros(hole.shape, np.float32)
    sig = np.array([[row[1]] for row in res.log], np.float64).reshape(-1, 1)
    seed = res.params.get("seed")
    return SampleResult(
        samples=samples, mean=full(res.image), std=std, log=list(res.log), sigma_log=sig,
        iterations=res.iterations, converged=True, message=res.message, frames=[],
        seconds=res.seconds, params=dict(res.params), method="inpaint",
        seed=seed if isinstance(seed, int) else None,
    )


def _disp(img: np.ndarray) -> np.ndarray:
    return to_display(np.asarray(img, np.float32))


def as_sampler_result(res: SampleResult, info: dict[str, Any]) -> SampleResult:
    """The core sampler's result as the workspace keeps it (and the session file stores
    it): the same :class:`SampleResult`, with the task as ``method``, plain parameters plus
    the denoiser and the crop origin, and the seed."""
    params = dict(res.params or info.get("params", {}) or {})
    params = {k: v for k, v in params.items() if isinstance(v, (bool, int, float, str)) or v is None}
    seed = params.get("seed", res.seed)
    return dataclasses.replace(
        res,
        method=str(info.get("task", res.method)),
        params={**params, "denoiser": info.get("denoiser"), "origin": info.get("origin")},
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
    )
