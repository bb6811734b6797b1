"""The main window: the document lifecycle, and docks and menus built from the features.

Nothing here computes pixels and no feature sees this class: features get an
:class:`~restorelab.gui.context.AppContext`. The window opens, saves and closes documents
(decoding, session loading and autosave run off the GUI thread), keeps the canvas in
step with the document, and turns each feature's dock and actions into the interface.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QSettings, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QUndoGroup
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QTabBar,
)

from restorelab.gui import dialogs, files, menus
from restorelab.gui.canvas import Canvas
from restorelab.gui.context import AppContext
from restorelab.gui.document import Document
from restorelab.gui.features import Feature, all_features
from restorelab.session import Autosaver, file_sha256, save_session
from restorelab.workspace import Workspace

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.npy);;All files (*)"
SESSION_FILTER = "restorelab sessions (*.rlsession);;All files (*)"
AUTOSAVE_INTERVAL_S = 180.0


def default_autosave_dir() -> Path:
    """The per-user autosave folder: ``QStandardPaths.AppDataLocation``/autosave."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    if not base:
        from restorelab.session import default_autosave_dir as core_dir

        return core_dir()
    return Path(base) / "autosave"


class MainWindow(QMainWindow):
    """The restorelab window. ``settings`` defaults to the user's QSettings."""

    document_changed = Signal()

    def __init__(
        self,
        settings: QSettings | None = None,
        *,
        autosave_dir: str | os.PathLike | None = None,
        autosave_interval_s: float = AUTOSAVE_INTERVAL_S,
    ) -> None:
        super().__init__()
        self.settings = settings or QSettings("restorelab", "restorelab")
        self.setWindowTitle("restorelab")
        self.setAcceptDrops(True)
        self.resize(1400, 900)
        self.canvas = Canvas(self)
        self.setCentralWidget(self.canvas)
        self.ctx = AppContext(self.canvas, self.settings, self)
        self.ctx.set_hooks(
            status=lambda m, ms: self.statusBar().showMessage(m, ms),
            confirm_discard=self.maybe_keep_changes,
            open_workspace=self._open_workspace,
            raise_dock=self._raise_dock,
        )
        self.undo_group = QUndoGroup(self)
        self.session_path: Path | None = None
        self.autosaver = Autosaver(
            Path(autosave_dir) if autosave_dir is not None else default_autosave_dir(), autosave_interval_s
        )
        self.autosaves = files.Autosaves(self.autosaver, lambda m: self.statusBar().showMessage(m, 5000))
        self._recovery_checked = False
        self.features: list[Feature] = all_features(self.ctx)
        self.docks: dict[str, QDockWidget] = {}
        self._build()
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(int(max(1.0, autosave_interval_s) * 1000))
        self.autosave_timer.timeout.connect(self.autosave_if_dirty)
        if self.autosaver.enabled:
            self.autosave_timer.start()
            QTimer.singleShot(400, self.offer_recovery)
        self.ctx.busy_changed.connect(lambda _: self.update_actions())
        self.ctx.jobs.finished.connect(lambda outcome, _t: outcome == "done" and self.autosave_if_dirty())
        self.ctx.device_changed.connect(lambda _: self._show_device())
        self.canvas.installEventFilter(self)  # hold-to-compare while the canvas has the focus
        self.ctx.set_tool("pan")
        self.update_actions()
        QTimer.singleShot(150, self._show_device)

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        """Status bar, docks from the features, actions, menus and the toolbar."""
        menus.build(self)

    def showEvent(self, ev: Any) -> None:  # noqa: N802
        super().showEvent(ev)
        for bar in self.findChildren(QTabBar):  # dock tabs: full titles, never "Ma…"
            bar.setElideMode(Qt.TextElideMode.ElideNone)
            bar.setUsesScrollButtons(True)

    def _raise_dock(self, key: str) -> None:
        d = self.docks.get(key)
        if d is not None:
            d.show()
            d.raise_()

    def _show_device(self) -> None:
        from restorelab.device import device_name

        self.device_label.setText(device_name(self.ctx.device))

    def sample_path(self) -> str:
        from restorelab.resources import sample_path

        return str(sample_path())

    # ------------------------------------------------------------------ documents
    def feature(self, key: str) -> Feature:
        """The feature named ``key`` ("denoise", "clone", "sampler", ...)."""
        return next(f for f in self.features if f.key == key)

    @property
    def doc(self) -> Document | None:
        return self.ctx.doc

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", self.ctx.last_dir(), IMAGE_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | os.PathLike) -> bool:
        """Decode ``path`` on the worker; the current document stays until it succeeds."""
        if not self.maybe_keep_changes():
            return False
        p = Path(path)

        def done(r: Any) -> None:
            ws, display = r
            self.set_document(Document(ws), display=display)
            self.ctx.set_last_dir(p.parent)
            self.recent.add(p.resolve())

        return self.ctx.run(
            f"Open {p.name}",
            lambda: files.open_job(p),
            done,
            quiet=True,
            on_error=lambda m, d, e: self._failed("Cannot open image", f"Could not open {p.name}:\n{m}", d),
        )

    def _failed(self, title: str, msg: str, details: str) -> bool:
        dialogs.error(self, title, msg, details)
        return True

    def _open_workspace(self, ws: Workspace) -> bool:
        self.set_document(Document(ws))
        return True

    def set_document(self, doc: Document, *, display: Any = None) -> None:
        old = self.ctx.doc
        if old is not None:
            self.undo_group.removeStack(old.undo)
            self.wait_autosave()
            self.autosaver.clear()  # the previous work was saved or let go by the user
            self.session_path = None
        self.undo_group.addStack(doc.undo)
        self.undo_group.setActiveStack(doc.undo)
        doc.image_changed.connect(self._image_changed)
        doc.mask_changed.connect(
            lambda r: self.canvas.set_mask(doc.mask) if r is None else self.canvas.overlay.update_rect(r)
        )
        doc.dirty_changed.connect(lambda _: self._update_title())
        doc.path_changed.connect(self._update_title)
        self.canvas.set_image(doc.image, doc.original, fit=True, display=display)
        self.canvas.set_mask(doc.mask)
        self.ctx.set_document(doc)
        self._update_title()
        self.update_actions()
        self.document_changed.emit()
        h, w = doc.image.shape[:2]
        self.statusBar().showMessage(
            f"Opened {doc.title}: {w}×{h} (W×H)" + (f", {doc.bit_depth}-bit" if doc.bit_depth else ""), 4000
        )

    def _image_changed(self, rect: Any) -> None:
        doc = self.ctx.doc
        if doc is None:
            return
        hint = doc.display_hint
        if rect is None or self.canvas.image is None or self.canvas.image.shape != doc.image.shape:
            self.canvas.set_image(doc.image, doc.original, display=None if hint is None else (hint, None))
        else:
            self.canvas.update_rect(rect, doc.image, hint)

    def _update_title(self) -> None:
        d = self.ctx.doc
        self.setWindowTitle("restorelab" if d is None else f"{d.title}{' *' if d.dirty else ''} — restorelab")

    def update_actions(self) -> None:
        has, idle = self.ctx.doc is not None, not self.ctx.busy
        for a in (self.a_save, self.a_save_as, self.a_save_session, self.a_export, self.a_fit, self.a_one):
            a.setEnabled(has)
        self.a_undo.setEnabled(idle and self.undo_group.canUndo())
        self.a_redo.setEnabled(idle and self.undo_group.canRedo())

    def maybe_keep_changes(self) -> bool:
        """True when it is fine to drop the current document (saved, or the user agreed)."""
        d = self.ctx.doc
        if d is None or not d.dirty:
            return True
        r = dialogs.save_discard_cancel(self, "Unsaved changes", f"Save the changes to {d.title}?")
        return self.save() if r == "save" else r == "discard"

    # ------------------------------------------------------------------ saving
    def save_to(self, path: str | os.PathLike, *, confirmed: bool = False, mark: bool = True) -> bool:
        """Save the image to ``path`` (atomic). Replacing the opened original asks first."""
        d = self.ctx.doc
        if d is None or not files.write_image(self, d, Path(path), confirmed=confirmed):
            return False
        p = Path(path)
        self.ctx.set_last_dir(p.parent)
        if mark:
            d.mark_saved(p)
            self.recent.add(p.resolve())
        self.statusBar().showMessage(f"Saved {p}", 4000)
        return True

    def save(self) -> bool:
        d = self.ctx.doc
        if d is None:
            return False
        if d.saved_path is not None:
            return self.save_to(d.saved_path, confirmed=not files.is_original(d, d.saved_path))
        return self.save_as()

    def suggest(self, suffix: str, ext: str | None = None) -> str:
        return files.suggest(self.ctx.doc, self.ctx.last_dir(), suffix, ext)

    def save_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(self, "Save image as", self.suggest("_restored"), IMAGE_FILTER)
        return bool(path) and self.save_to(path)

    def export_copy(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(self, "Export a copy", self.suggest("_export"), IMAGE_FILTER)
        return bool(path) and self.save_to(path, mark=False)

    # ------------------------------------------------------------------ sessions
    def collect(self) -> Workspace:
        """The document's workspace with every feature's current choices written in."""
        d = self.ctx.doc
        if d is None:
            raise ValueError("no document to save")
        for f in self.features:
            f.state(d.ws)
        return d.ws

    def _sha(self, ws: Workspace) -> str | None:
        try:
            return file_sha256(ws.path) if ws.path is not None and Path(ws.path).is_file() else None
        except OSError:
            return None

    def save_session_dialog(self) -> bool:
        if self.ctx.doc is None:
            return False
        suggest = str(self.session_path) if self.session_path else self.suggest("", ".rlsession")
        path, _ = QFileDialog.getSaveFileName(self, "Save session", suggest, SESSION_FILTER)
        return bool(path) and self.save_session_to(path)

    def save_session_to(self, path: str | os.PathLike) -> bool:
        """Write the current work as a session file (``restorelab.session.save_session``)."""
        if self.ctx.doc is None:
            return False
        p = Path(path)
        p = p.with_suffix(".rlsession") if p.suffix == "" else p
        try:
            ws = self.collect()
            save_session(p, ws.to_session(image_sha256=self._sha(ws)))
        except Exception as e:  # noqa: BLE001 - shown, never a crash
            import traceback

            dialogs.error(
                self, "Cannot save the session", f"Could not save {p.name}:\n{e}", traceback.format_exc()
            )
            return False
        self.session_path = p
        self.statusBar().showMessage(f"Session saved to {p}", 4000)
        return True

    def open_session_dialog(self) -> bool:
        path, _ = QFileDialog.getOpenFileName(self, "Open session", self.ctx.last_dir(), SESSION_FILTER)
        return bool(path) and self.open_session(path)

    def open_session(self, path: str | os.PathLike, *, recovered: bool = False) -> bool:
        """Reopen a session file on the worker. A damaged file gives an error dialog and the
        current document stays as it was: nothing is replaced before the whole session is
        read and checked."""
        if not recovered and not self.maybe_keep_changes():
            return False
        p = Path(path)

        def done(r: Any) -> None:
            ws, warnings, display = r
            self.set_document(Document(ws), display=display)
            notes = list(warnings)
            for f in self.features:
                notes += f.restore(ws)
            if recovered:
                ws_doc = self.ctx.doc
                if ws_doc is not None:
                    ws_doc.undo.resetClean()  # recovered work is not saved anywhere yet
                self._update_title()
                self.autosave(force=True)  # kept under this run's name before the old one goes
                self.wait_autosave()
                if getattr(self, "_recovering", None) is not None:
                    self.autosaver.discard(self._recovering)
                    self._recovering = None
            else:
                self.session_path = p
                self.ctx.set_last_dir(p.parent)
            msg = ("Recovered" if recovered else "Opened") + f" session {p.name}"
            self.statusBar().showMessage(msg + (" — " + "; ".join(notes) if notes else ""), 8000)

        return self.ctx.run(
            f"Open session {p.name}",
            lambda: files.session_job(p),
            done,
            quiet=True,
            on_error=lambda m, d, e: self._failed(
                "Cannot open the session", f"Could not open {p.name}:\n{m}", d
            ),
        )

    # ------------------------------------------------------------------ autosave
    def autosave(self, *, force: bool = False) -> None:
        """Autosave the current work on a background thread (a snapshot, no copy)."""
        d = self.ctx.doc
        if d is not None and self.autosaver.enabled:
            self.autosaves.save(d, self.collect, force=force)

    def wait_autosave(self, timeout: float = 60.0) -> None:
        self.autosaves.wait(timeout)

    def autosave_if_dirty(self) -> None:
        if self.ctx.doc is not None and self.ctx.doc.dirty:
            self.autosave(force=True)

    def offer_recovery(self) -> bool:
        """After a crash (autosaves of a process that is gone): restore the newest or discard."""
        if self._recovery_checked or not self.autosaver.enabled:
            return False
        self._recovery_checked = True
        self._recovering = self.autosaves.ask_recovery(self)
        return self._recovering is not None and self.open_session(self._recovering.path, recovered=True)

    # ------------------------------------------------------------------ keys, drops, close
    def escape(self) -> None:
        clone = next((f for f in self.features if f.key == "clone"), None)
        if clone is not None and getattr(clone, "active", False):
            clone.cancel()
        else:
            self.ctx.cancel()

    def eventFilter(self, obj: Any, ev: Any) -> bool:  # noqa: N802
        """Hold ``\\`` to show the original, whichever child of the window has the focus."""
        t = ev.type()
        if t in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and ev.key() == Qt.Key.Key_Backslash:
            if not ev.isAutoRepeat() and QApplication.activeWindow() is self:
                self.canvas.show_original(t == QEvent.Type.KeyPress)
            return True
        return False

    def keyPressEvent(self, ev: Any) -> None:  # noqa: N802
        if ev.key() == Qt.Key.Key_Backslash and not ev.isAutoRepeat():
            return self.canvas.show_original(True)
        super().keyPressEvent(ev)

    def keyReleaseEvent(self, ev: Any) -> None:  # noqa: N802
        if ev.key() == Qt.Key.Key_Backslash and not ev.isAutoRepeat():
            return self.canvas.show_original(False)
        super().keyReleaseEvent(ev)

    def dragEnterEvent(self, ev: Any) -> None:  # noqa: N802
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev: Any) -> None:  # noqa: N802
        urls = ev.mimeData().urls()
        if urls:
            self.open_path(urls[0].toLocalFile())

    def closeEvent(self, ev: Any) -> None:  # noqa: N802
        if not self.maybe_keep_changes():
            ev.ignore()
            return
        self.shutdown()
        self.autosaver.clear()  # a clean exit: nothing to recover
        ev.accept()

    def shutdown(self) -> None:
        """Cancel and join every background thread."""
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.ctx.shutdown()
        self.autosave_timer.stop()
        self.wait_autosave()
        for f in self.features:
            f.shutdown()
        self.settings.sync()
