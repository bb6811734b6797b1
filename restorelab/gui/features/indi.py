"""Restoration by direct iteration (InDI; Delbracio & Milanfar, TMLR 2023).

Choose the degradation the photo suffers from (blur, 4× low resolution, JPEG artefacts)
and the number of steps N: one step is plain regression (the sharpest answer in PSNR but
soft), more steps trade distortion for detail. The restoration runs as a job; its result
is applied as one undoable step and the scrubber walks the trajectory x_t from the input
(t = 1) to the result (t = 0) over the canvas. The trajectory belongs to the document it
was computed on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QPushButton, QSlider, QSpinBox, QWidget

from restorelab import indi
from restorelab.gui.context import AppContext
from restorelab.gui.display import to_display
from restorelab.gui.document import Document
from restorelab.gui.features.base import Area, Feature
from restorelab.gui.undo import edit_job
from restorelab.jobs import Progress
from restorelab.session import MethodChoice
from restorelab.workspace import Workspace

TITLES = {
    "blur": "Blur (Gaussian or motion)",
    "sr4": "Low resolution (4× up-scaling)",
    "jpeg": "JPEG artefacts",
}


class IndiFeature(Feature):
    key = "indi"
    title = "Restore (InDI)"
    area = Area.RightDockWidgetArea
    tab_with = "multiscale"

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx)
        w = self.widget = QWidget()
        form = QFormLayout(w)
        self.degradation = QComboBox()
        shipped = set(indi.available())
        for d in indi.DEGRADATIONS:
            self.degradation.addItem(TITLES.get(d, d) + ("" if d in shipped else " (no model installed)"), d)
        form.addRow("Degradation", self.degradation)
        self.steps = QSpinBox()
        self.steps.setRange(1, 100)
        self.steps.setValue(10)
        self.steps.setToolTip("N = 1: one regression step (highest PSNR, softest); more steps: more detail")
        form.addRow("Steps N", self.steps)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        form.addRow("Random seed", self.seed)
        self.run_button = QPushButton("Restore  (Ctrl+Shift+R)")
        self.run_button.clicked.connect(self.run)
        form.addRow(self.run_button)
        self.scrub = QSlider(Qt.Orientation.Horizontal)
        self.scrub.setEnabled(False)
        self.scrub.setToolTip("Walk the trajectory x_t from the input (left) to the result (right)")
        self.scrub.valueChanged.connect(self._scrubbed)
        form.addRow("Trajectory", self.scrub)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        form.addRow(self.info)
        self.result: Any = None
        self._source: Document | None = None
        self._displays: list[np.ndarray] = []
        self.a_run = self.action("Restore by direct iteration (InDI)", self.run, menu="Run",
                                 shortcut="Ctrl+Shift+R")

    def dock(self) -> QWidget:
        return self.widget

    def actions(self) -> list[QAction]:
        return [self.a_run]

    def run(self) -> bool:
        doc = self.doc
        deg = self.degradation.currentData()
        if doc is None or deg is None:
            return False
        if deg not in indi.available():
            self.ctx.info("Restore (InDI)", f"No InDI model for {TITLES.get(deg, deg)} is installed.")
            return False
        y, steps, seed, dev = doc.snapshot(), int(self.steps.value()), int(self.seed.value()), self.ctx.device
        holder: dict[str, Any] = {}

        def keep(job: Any) -> Any:
            # on the worker: each preview and each trajectory frame also gets its uint8 display
            # conversion here, so showing a 12 MP x_t costs the GUI thread no conversion
            try:
                while True:
                    try:
                        ev = next(job)
                    except StopIteration as stop:
                        res = stop.value
                        break
                    if ev.preview is not None:
                        ev.data["display"] = to_display(np.asarray(ev.preview, np.float32))
                    yield ev
            finally:
                job.close()
            holder["result"] = res
            holder["displays"] = [to_display(np.asarray(f, np.float32)) for f in res.trajectory]
            return res.image

        def factory() -> Any:
            return edit_job(keep(indi.restore_job(y, deg, steps, seed=seed, device=dev)), y)

        def progress(batch: list[Progress]) -> None:
            ev = next((e for e in reversed(batch) if e.preview is not None), None)
            if ev is not None and np.shape(ev.preview)[:2] == y.shape[:2]:
                self.ctx.preview(np.asarray(ev.preview), owner=self, display=ev.data.get("display"))

        def done(e: Any) -> None:
            if self.doc is not doc:
                return
            doc.ws.history.append(MethodChoice("indi", deg, {"steps": steps}, seed=seed))
            doc.apply_edit(e, f"InDI: {TITLES.get(deg, deg)}, {steps} step{'s' if steps > 1 else ''}")
            self._show(holder.get("result"), doc, holder.get("displays"))

        return self.ctx.run(f"InDI ({deg}, N={steps})", factory, done, on_progress=progress)

    def _show(self, result: Any, doc: Document, displays: list[np.ndarray] | None = None) -> None:
        self.result, self._source, self._displays = result, doc, list(displays or [])
        traj = list(getattr(result, "trajectory", []) or [])
        self.scrub.blockSignals(True)
        self.scrub.setRange(0, max(len(traj) - 1, 0))
        self.scrub.setValue(max(len(traj) - 1, 0))
        self.scrub.blockSignals(False)
        self.scrub.setEnabled(len(traj) > 1)
        self.info.setText(f"{len(traj) - 1} steps; drag the slider to see x_t." if traj else "")

    def _scrubbed(self, i: int) -> None:
        traj = list(getattr(self.result, "trajectory", []) or [])
        times = list(getattr(self.result, "times", []) or [])
        if self.doc is None or self.doc is not self._source or not 0 <= i < len(traj):
            return
        img = np.asarray(traj[i])
        if i == len(traj) - 1 or img.shape[:2] != self.doc.image.shape[:2]:
            self.ctx.clear_preview(self)  # the last frame is the applied result itself
        else:
            disp = self._displays[i] if i < len(self._displays) else None
            self.ctx.preview(img, owner=self, display=disp)
        if i < len(times):
            self.info.setText(f"x_t at t = {float(times[i]):.3f}")

    def document_changed(self, doc: Document | None) -> None:
        self.result, self._source, self._displays = None, None, []
        self.scrub.setEnabled(False)
        self.info.setText("")

    def state(self, ws: Workspace) -> None:
        deg = self.degradation.currentData()
        if deg is not None:
            ws.methods[self.key] = MethodChoice(self.key, deg, {"steps": int(self.steps.value())},
                                                seed=int(self.seed.value()))

    def restore(self, ws: Workspace) -> list[str]:
        m = self.method(ws)
        if m is None:
            return []
        i = self.degradation.findData(m.name)
        if i < 0:
            return [f"InDI degradation {m.name!r} is not available"]
        self.degradation.setCurrentIndex(i)
        steps = m.params.get("steps")
        if isinstance(steps, int):
            self.steps.setValue(steps)
        if m.seed is not None:
            self.seed.setValue(int(m.seed))
        return []
