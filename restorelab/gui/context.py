"""The application context: the only thing a feature sees.

A feature (denoise, clone, sampler, ...) gets an :class:`AppContext` and never the main
window. Through it a feature reads the current :class:`~restorelab.gui.document.Document`
(and is told when another one replaces it), shows a preview on the canvas, writes to the
status bar, runs work off the GUI thread (:meth:`AppContext.run`: one job at a time per
document, progress, cancel, a preview that disappears when the job ends however it
ends), asks the user to confirm, and registers canvas tools. The window fills in the
few hooks that belong to the document lifecycle (asking to keep changes, opening a
computed image as a new document).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QWidget

from restorelab.gui import dialogs
from restorelab.gui.canvas import Canvas, ToolHandler
from restorelab.gui.document import Document
from restorelab.gui.runner import JobController, LatestRunner
from restorelab.jobs import Progress
from restorelab.safety import OOM_KEY
from restorelab.workspace import Workspace

JobFactory = Callable[[], Any]


@dataclass
class ToolSpec:
    """A canvas tool a feature offers: its key, menu text, shortcut, tip and handler."""

    key: str
    text: str
    shortcut: str
    tip: str
    handler: Callable[[], ToolHandler | None]
    brush: bool = False


class AppContext(QObject):
    """Workspace access, preview, status, jobs, device and confirmations for features."""

    #: the current document was replaced (argument: the new Document or None)
    document_changed = Signal(object)
    #: a job started (True) or ended (False)
    busy_changed = Signal(bool)
    #: the device preference changed
    device_changed = Signal(str)
    #: the active canvas tool changed (its key)
    tool_changed = Signal(str)

    def __init__(self, canvas: Canvas, settings: QSettings, parent_widget: QWidget) -> None:
        super().__init__(parent_widget)
        self.canvas = canvas
        self.settings = settings
        self.parent_widget = parent_widget
        self.doc: Document | None = None
        self.device = str(settings.value("device", "auto"))
        self.jobs = JobController(self)
        self.previews = LatestRunner(self)
        self.tools: dict[str, ToolSpec] = {}
        self.tool = "pan"
        self._status: Callable[[str, int], None] = lambda msg, ms: None
        self._confirm_discard: Callable[[], bool] = lambda: True
        self._open_workspace: Callable[[Workspace], bool] = lambda ws: False
        self._raise: Callable[[str], None] = lambda key: None
        self._job_note = ""
        self._preview_owner: object | None = None
        # job display in the status bar (placed there by the window)
        self.job_label = QLabel("")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Cancel the running job (Esc)")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.jobs.cancel)
        self.jobs.started.connect(self._job_started)
        self.jobs.progress.connect(self._job_progress)
        self.jobs.finished.connect(self._job_finished)

    # -- hooks the window sets ------------------------------------------------------------
    def set_hooks(
        self,
        *,
        status: Callable[[str, int], None],
        confirm_discard: Callable[[], bool],
        open_workspace: Callable[[Workspace], bool],
        raise_dock: Callable[[str], None],
    ) -> None:
        self._status, self._confirm_discard = status, confirm_discard
        self._open_workspace, self._raise = open_workspace, raise_dock

    # -- document -------------------------------------------------------------------------
    @property
    def workspace(self) -> Workspace | None:
        return None if self.doc is None else self.doc.ws

    def set_document(self, doc: Document | None) -> None:
        """Called by the window only: cancel what belongs to the old document, then tell
        every feature (they clear results, previews and placements)."""
        if self.jobs.busy:
            self.jobs.cancel()
            self.jobs.wait(3000)
        self.previews.cancel()
        self.preview(None)
        self.doc = doc
        self.document_changed.emit(doc)

    def open_workspace(self, ws: Workspace) -> bool:
        """Open a computed image (e.g. a sampler result) as a new document."""
        return self._open_workspace(ws)

    def confirm_discard(self) -> bool:
        """True when the current work may be dropped (saved, or the user agreed)."""
        return self._confirm_discard()

    def raise_dock(self, key: str) -> None:
        self._raise(key)

    # -- canvas -----------------------------------------------------------------------------
    def preview(
        self,
        img: np.ndarray | None,
        origin: tuple[int, int] = (0, 0),
        owner: object = None,
        display: np.ndarray | None = None,
    ) -> None:
        """Show ``img`` over the canvas at ``origin`` (y, x), or take the preview away;
        ``display`` is its uint8 conversion when a worker already made it."""
        self._preview_owner = owner if img is not None else None
        self.canvas.show_preview(img, origin, display)

    def clear_preview(self, owner: object) -> None:
        """Take the preview away if ``owner`` put it there."""
        if self._preview_owner is owner:
            self.preview(None)

    def add_tool(self, spec: ToolSpec) -> None:
        self.tools[spec.key] = spec

    def set_tool(self, key: str) -> None:
        spec = self.tools.get(key)
        self.tool = key if spec is not None else "pan"
        self.canvas.handler = spec.handler() if spec is not None else None
        self.tool_changed.emit(self.tool)

    # -- messages ---------------------------------------------------------------------------
    def status(self, msg: str, ms: int = 5000) -> None:
        self._status(msg, ms)

    def error(self, title: str, msg: str, details: str = "") -> None:
        dialogs.error(self.parent_widget, title, msg, details)

    def info(self, title: str, msg: str) -> None:
        dialogs.info(self.parent_widget, title, msg)

    def confirm(self, title: str, question: str) -> bool:
        return dialogs.confirm(self.parent_widget, title, question)

    def last_dir(self) -> str:
        return str(self.settings.value("last_dir", str(Path.home())))

    def set_last_dir(self, path: str | Path) -> None:
        self.settings.setValue("last_dir", str(path))

    def set_device(self, pref: str) -> None:
        self.device = pref
        self.settings.setValue("device", pref)
        self.device_changed.emit(pref)

    # -- jobs -------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.jobs.busy

    def run(
        self,
        title: str,
        factory: JobFactory,
        on_done: Callable[[Any], None],
        *,
        on_progress: Callable[[list[Progress]], None] | None = None,
        on_end: Callable[[str], None] | None = None,
        on_error: Callable[[str, str, BaseException], bool] | None = None,
        quiet: bool = False,
    ) -> bool:
        """Run ``factory()`` (a core job) on the worker; refuse while another runs.

        Whatever the outcome, a preview shown during the job is taken away at its end, so a
        cancelled or failed run leaves the canvas exactly as it was. ``quiet`` jobs (open,
        autosave) show no progress bar."""
        if self.jobs.busy:
            self.status(f"“{self.jobs.title}” is still running — one job at a time; Esc cancels it.")
            return False

        def err(msg: str, details: str, exc: BaseException) -> None:
            if on_error is not None and on_error(msg, details, exc):
                return
            self.error(f"{title} failed", msg, details)

        def end(outcome: str) -> None:
            self.preview(None)
            if on_end is not None:
                on_end(outcome)
            self.busy_changed.emit(False)

        self._quiet = quiet
        ok = self.jobs.start(title, factory, on_done, on_progress=on_progress, on_error=err, on_end=end)
        if ok:
            self.busy_changed.emit(True)
        return ok

    def cancel(self) -> None:
        self.jobs.cancel()

    def _job_started(self, title: str) -> None:
        if getattr(self, "_quiet", False):
            return
        self.job_label.setText(title + " …")
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setVisible(True)
        self.cancel_button.setVisible(True)

    def _job_progress(self, batch: list[Progress]) -> None:
        for e in batch:
            note = e.data.get(OOM_KEY) if isinstance(e.data, dict) else None
            if note:
                self._job_note = str(note)
                self.status(self._job_note, 15000)
        ev = batch[-1]
        if ev.total:
            self.progress_bar.setRange(0, int(ev.total))
            self.progress_bar.setValue(int(min(ev.step, ev.total)))
        if ev.message and not getattr(self, "_quiet", False):
            self.job_label.setText(f"{self.jobs.title}: {ev.message}")

    def _job_finished(self, outcome: str, title: str) -> None:
        self.progress_bar.setVisible(False)
        self.cancel_button.setVisible(False)
        self.job_label.setText("")
        if getattr(self, "_quiet", False) and outcome == "done":
            return
        msg = {"done": "finished", "cancelled": "cancelled — nothing changed", "failed": "failed"}[outcome]
        if self._job_note:
            msg += f" ({self._job_note})"
            self._job_note = ""
        self.status(f"{title}: {msg}", 15000 if "memory" in msg else 5000)

    def shutdown(self) -> None:
        self.jobs.cancel()
        self.jobs.wait(5000)
        self.previews.stop()
