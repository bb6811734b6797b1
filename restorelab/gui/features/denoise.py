"""Denoise: the method/σ/parameter panel, Apply as a job, and the live crop preview.

The live preview recomputes a ≤256² crop of the view on the preview runner (latest
request wins) only for methods whose declared cost fits a preview budget on that crop;
the result of Apply is prepared on the worker (:func:`~restorelab.gui.undo.edit_job`) so
that the GUI thread only swaps arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from restorelab import denoise
from restorelab.denoise.base import preview_ok
from restorelab.gui.context import AppContext
from restorelab.gui.document import Document
from restorelab.gui.features.base import Area, Feature
from restorelab.gui.panels.denoise_panel import DenoisePanel
from restorelab.gui.undo import edit_job
from restorelab.jobs import Progress, run_job
from restorelab.safety import oom_fallback_job, tiled_apply
from restorelab.session import MethodChoice
from restorelab.workspace import Workspace

#: seconds a live preview may take on its crop
PREVIEW_BUDGET_S = 0.25


def make_denoiser(name: str, values: dict[str, Any], device: str) -> Any:
    return denoise.get(name, device=device, **values)


def denoise_job(name: str, values: dict[str, Any], sigma: float, y: np.ndarray, device: str) -> Any:
    """The denoiser's job on ``device``; on running out of GPU memory the same denoiser in
    tiles, then on the CPU (:func:`restorelab.safety.oom_fallback_job`)."""

    def tiled() -> Any:
        den = make_denoiser(name, values, device)
        yield Progress(0, 1, message="in tiles")
        return tiled_apply(lambda t: den(t, sigma), y)

    return oom_fallback_job(lambda d: make_denoiser(name, values, d).job(y, sigma), device, tiled=tiled)


class DenoiseFeature(Feature):
    key = "denoise"
    title = "Denoise"
    area = Area.RightDockWidgetArea

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx)
        self.panel = DenoisePanel()
        self.panel.run_requested.connect(self.run)
        self.panel.preview_requested.connect(self.request_preview)
        self._preview_key: Any = None
        ctx.previews.ready.connect(self._preview_ready)
        ctx.canvas.vb.sigRangeChanged.connect(lambda *_: self._view_moved())
        self.a_run = self.action(
            "&Denoise", self.run, menu="Run", shortcut="Ctrl+R", tip="Denoise with the Denoise panel's method"
        )

    def dock(self) -> QWidget:
        return self.panel

    def actions(self) -> list[QAction]:
        return [self.a_run]

    def document_changed(self, doc: Document | None) -> None:
        self._preview_key = None
        self.a_run.setEnabled(doc is not None)

    # -- apply ------------------------------------------------------------------------------
    def run(self, *, device: str | None = None) -> bool:
        """Denoise the whole image (or inside the mask) with the panel's method."""
        d, panel = self.doc, self.panel
        if d is None or panel.method_name() is None:
            return False
        name, sigma, values = panel.method_name(), panel.sigma_value(), panel.values()
        dev = device or self.ctx.device
        y = d.snapshot()
        mask = d.mask_bool() if panel.in_mask.isChecked() and d.has_mask() else None
        title = panel.method.currentText()
        self.ctx.previews.cancel()
        self._preview_key = None

        def done(edit: Any) -> None:
            if self.doc is not d:
                return
            d.ws.history.append(MethodChoice("denoise", name, dict(values), sigma))
            d.apply_edit(edit, f"Denoise: {title}, σ={sigma * 255:.1f}")

        def progress(batch: list[Progress]) -> None:
            prev = next((e.preview for e in reversed(batch) if e.preview is not None), None)
            if prev is not None and np.shape(prev)[:2] == y.shape[:2]:
                self.ctx.preview(np.asarray(prev), owner=self)

        def factory() -> Any:
            return edit_job(denoise_job(name, values, sigma, y, dev), y, mask)

        return self.ctx.run(f"Denoise ({title})", factory, done, on_progress=progress)

    # -- live preview -------------------------------------------------------------------
    def preview_ok(self, shape: tuple[int, ...]) -> bool:
        """Whether the chosen method's declared cost fits the preview budget on ``shape``."""
        cls = self.panel.method_class()
        return cls is not None and preview_ok(cls, shape, PREVIEW_BUDGET_S, device=self.ctx.device)

    def _view_moved(self) -> None:
        if self.panel.live.isChecked() and self.ctx.canvas.preview_item.isVisible() and not self.ctx.busy:
            self.panel._debounce.poke()  # noqa: SLF001

    def request_preview(self) -> None:
        """Recompute the live preview of a ≤256² crop of the view (latest request wins)."""
        d, panel = self.doc, self.panel
        if d is None or not panel.live.isChecked() or self.ctx.busy or not panel.isVisible():
            self.ctx.clear_preview(self)
            return
        vr = self.ctx.canvas.visible_rect()
        if vr is None:
            return
        y0, x0, y1, x1 = vr
        cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
        hh, hw = min(128, (y1 - y0) // 2 or 1), min(128, (x1 - x0) // 2 or 1)
        y0, x0 = max(0, cy - hh), max(0, cx - hw)
        y1, x1 = min(d.shape[0], cy + hh), min(d.shape[1], cx + hw)
        if not self.preview_ok((y1 - y0, x1 - x0)):
            self.ctx.clear_preview(self)
            return
        crop = d.image[y0:y1, x0:x1].copy()
        name, sigma, values, dev = panel.method_name(), panel.sigma_value(), panel.values(), self.ctx.device
        key = (id(d), y0, x0)
        self._preview_key = key

        def compute(token: Any) -> Any:
            return run_job(make_denoiser(name, values, dev).job(crop, sigma), cancel=token)

        self.ctx.previews.request(compute, ("denoise", key))

    def _preview_ready(self, out: Any, tag: Any) -> None:
        if not (isinstance(tag, tuple) and tag and tag[0] == "denoise"):
            return
        key = tag[1]
        if key != self._preview_key or self.ctx.busy or self.doc is None or id(self.doc) != key[0]:
            return
        self.ctx.preview(np.asarray(out), (key[1], key[2]), owner=self)

    # -- state ------------------------------------------------------------------------------
    def state(self, ws: Workspace) -> None:
        p = self.panel
        if p.method_name() is not None:
            ws.methods[self.key] = MethodChoice(
                self.key, p.method_name(), _plain(p.values()), p.sigma_value()
            )
        ws.extra["in_mask"] = bool(p.in_mask.isChecked())
        ws.extra["live"] = bool(p.live.isChecked())

    def restore(self, ws: Workspace) -> list[str]:
        p, notes = self.panel, []
        m = self.method(ws)
        if m is not None:
            try:
                p.select(m.name)
                if m.sigma is not None:
                    p.sigma.setValue(float(m.sigma) * 255.0)
                if p.form is not None:
                    p.form.set_values(dict(m.params))
            except KeyError:
                notes.append(f"denoiser {m.name!r} is not available")
        for k, w in (("in_mask", p.in_mask), ("live", p.live)):
            if isinstance(ws.extra.get(k), bool):
                w.setChecked(ws.extra[k])
        return notes


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, (bool, int, float, str)) or v is None:
            out[k] = v
        elif isinstance(v, (list, tuple)):
            out[k] = list(v)
    return out
