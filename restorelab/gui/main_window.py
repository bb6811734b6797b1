"""The main window: menus, toolbar, docks, status bar; wires the document to the core.

Nothing here computes pixels: denoising, editing and sampling are calls into the core,
run as jobs by :class:`~restorelab.gui.worker.JobController` (one job at a time per
document; a second request is refused with a message). Results are applied only when a
job completes, as one undoable command.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QSettings, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QUndoGroup
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QToolBar,
    QUndoView,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from restorelab.gui import compat, dialogs
from restorelab.gui.canvas import Canvas
from restorelab.gui.document import Document
from restorelab.gui.panels.denoise_panel import DenoisePanel
from restorelab.gui.tools import BrushHandler, FillHandler
from restorelab.gui.worker import OOM_KEY, JobController, LatestRunner, oom_fallback_job
from restorelab.jobs import Progress, run_job

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.npy);;All files (*)"
SESSION_FILTER = "restorelab sessions (*.rlsession);;All files (*)"
MAX_RECENT = 8
AUTOSAVE_INTERVAL_S = 180.0
#: autosaves of larger working images are written by a background thread
AUTOSAVE_BACKGROUND_BYTES = 32 << 20


def default_autosave_dir() -> Path:
    """The per-user autosave folder: ``QStandardPaths.AppDataLocation``/autosave."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    if not base:
        from restorelab.session import default_autosave_dir as core_dir

        return core_dir()
    return Path(base) / "autosave"


def _core_version() -> str:
    try:
        from restorelab import __version__

        return __version__
    except Exception:  # noqa: BLE001
        return "?"


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
        self.doc: Document | None = None
        self.device_pref = str(self.settings.value("device", "auto"))
        self.brush_radius = float(self.settings.value("brush/radius", 12.0))
        self.brush_hardness = float(self.settings.value("brush/hardness", 0.6))
        self.undo_group = QUndoGroup(self)
        self.jobs = JobController(self)
        self.jobs.started.connect(self._job_started)
        self.jobs.finished.connect(self._job_finished)
        self.jobs.progress.connect(self._job_progress)
        self.preview_runner = LatestRunner(self)
        self.preview_runner.ready.connect(self._preview_ready)
        self._preview_key: Any = None
        self._job_note = ""
        self.session_path: Path | None = None
        from restorelab.session import Autosaver

        self.autosaver = Autosaver(
            Path(autosave_dir) if autosave_dir is not None else default_autosave_dir(), autosave_interval_s
        )
        self._recovery_checked = False
        self._autosave_thread: threading.Thread | None = None
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(int(max(1.0, autosave_interval_s) * 1000))
        self.autosave_timer.timeout.connect(self.autosave_if_dirty)
        if self.autosaver.enabled:
            self.autosave_timer.start()

        self.canvas = Canvas(self)
        self.setCentralWidget(self.canvas)
        self.canvas.cursor_info.connect(lambda s: self.cursor_label.setText(s))
        self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        self.canvas.vb.sigRangeChanged.connect(lambda *_: self._view_moved())

        self._build_status_bar()
        self._build_docks()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self.set_tool("pan")
        self._restore_settings()
        self._update_actions()
        self.canvas.installEventFilter(self)  # hold-to-compare while the canvas has the focus
        QTimer.singleShot(150, self._late_init)  # after the first paint: torch and the registry load here
        if self.autosaver.enabled:
            QTimer.singleShot(400, self.offer_recovery)

    # ------------------------------------------------------------------ construction
    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.cursor_label = QLabel("")
        self.cursor_label.setMinimumWidth(260)
        self.zoom_label = QLabel("100 %")
        self.device_label = QLabel("device: …")
        self.job_label = QLabel("")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Cancel the running job (Esc)")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.jobs.cancel)
        for w in (self.cursor_label,):
            sb.addWidget(w)
        for w in (self.job_label, self.progress_bar, self.cancel_button, self.zoom_label, self.device_label):
            sb.addPermanentWidget(w)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea, name: str) -> QDockWidget:
        d = QDockWidget(title, self)
        d.setObjectName(name)
        d.setWidget(widget)
        self.addDockWidget(area, d)
        return d

    def _build_docks(self) -> None:
        R, L, B = (
            Qt.DockWidgetArea.RightDockWidgetArea,
            Qt.DockWidgetArea.LeftDockWidgetArea,
            Qt.DockWidgetArea.BottomDockWidgetArea,
        )
        self.denoise_panel = DenoisePanel()
        self.denoise_panel.run_requested.connect(self.run_denoise)
        self.denoise_panel.preview_requested.connect(self.request_preview)
        self.denoise_dock = self._dock("Denoise", self.denoise_panel, R, "dock_denoise")

        self.mask_panel = self._build_mask_panel()
        self.mask_dock = self._dock("Mask", self.mask_panel, L, "dock_mask")

        from restorelab.gui.clone_tool import ClonePanel, CloneTool, EditOpsPanel

        self.clone_tool = CloneTool(self)
        self.clone_panel = ClonePanel(self.clone_tool)
        self.clone_dock = self._dock("Seamless clone", self.clone_panel, L, "dock_clone")
        self.edit_panel = EditOpsPanel(self)
        self.edit_dock = self._dock("Poisson edit", self.edit_panel, L, "dock_edit")

        from restorelab.gui.sampler_view import ManifoldPanel, SamplerView

        self.sampler_view = SamplerView(self)
        self.sampler_dock = self._dock("Prior sampler  (σ_t, h_t)", self.sampler_view, B, "dock_sampler")
        self.manifold_panel = ManifoldPanel(self)
        self.manifold_dock = self._dock("2-D manifold demo", self.manifold_panel, B, "dock_manifold")

        from restorelab.gui.multiscale_panel import MultiscalePanel

        self.multiscale_panel = MultiscalePanel(self)
        self.multiscale_dock = self._dock("Multiscale", self.multiscale_panel, R, "dock_multiscale")

        self.undo_view = QUndoView(self.undo_group)
        self.history_dock = self._dock("History", self.undo_view, L, "dock_history")
        self.tabifyDockWidget(self.denoise_dock, self.multiscale_dock)
        self.tabifyDockWidget(self.mask_dock, self.clone_dock)
        self.tabifyDockWidget(self.clone_dock, self.edit_dock)
        self.tabifyDockWidget(self.edit_dock, self.history_dock)
        self.tabifyDockWidget(self.sampler_dock, self.manifold_dock)
        self.denoise_dock.raise_()
        self.resizeDocks([self.sampler_dock], [250], Qt.Orientation.Vertical)
        self.resizeDocks([self.denoise_dock, self.mask_dock], [360, 260], Qt.Orientation.Horizontal)
        self.mask_dock.raise_()
        self.sampler_dock.raise_()

    def _build_mask_panel(self) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        self.radius_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.radius_slider.setRange(1, 400)
        self.radius_slider.setValue(self.brush_radius)
        self.radius_slider.setToolTip("Brush radius in image pixels  ( [ smaller, ] larger )")
        self.radius_slider.valueChanged.connect(self._set_radius)
        self.hardness_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.hardness_slider.setRange(0, 1)
        self.hardness_slider.setDecimals(2)
        self.hardness_slider.setValue(self.brush_hardness)
        self.hardness_slider.setToolTip("1 = hard edge, 0 = soft fall-off  ( { softer, } harder )")
        self.hardness_slider.valueChanged.connect(lambda v: setattr(self, "brush_hardness", float(v)))
        self.opacity_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 1)
        self.opacity_slider.setDecimals(2)
        self.opacity_slider.setValue(float(self.settings.value("mask/opacity", 0.45)))
        self.opacity_slider.setToolTip("Opacity of the mask overlay")
        self.opacity_slider.valueChanged.connect(lambda v: self.canvas.overlay.set_opacity_level(float(v)))
        self.canvas.overlay.set_opacity_level(self.opacity_slider.value())
        form.addRow("Radius (px)", self.radius_slider)
        form.addRow("Hardness", self.hardness_slider)
        form.addRow("Overlay opacity", self.opacity_slider)
        hint = QLabel(
            "B brush · E eraser (or Shift+drag) · G fill · H pan\n"
            "Right or middle drag pans, wheel zooms to the cursor."
        )
        hint.setWordWrap(True)
        hint.setStyleSheet("color: gray")
        form.addRow(hint)
        return w

    def _act(
        self, text: str, slot: Any, shortcut: Any = None, tip: str = "", checkable: bool = False
    ) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            if isinstance(shortcut, list | tuple):
                a.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setToolTip(tip)
            a.setStatusTip(tip)
        a.setCheckable(checkable)
        a.triggered.connect(slot)
        self.addAction(a)
        return a

    def _build_actions(self) -> None:
        SK = QKeySequence.StandardKey
        self.a_open = self._act("&Open…", self.open_dialog, SK.Open, "Open an image")
        self.a_open_sample = self._act(
            "Open &sample", lambda: self.open_path(self._sample()), None, "Open the built-in noisy astronaut"
        )
        self.a_save = self._act(
            "&Save", self.save, SK.Save, "Save (asks before replacing the opened original)"
        )
        self.a_save_as = self._act(
            "Save &As…", self.save_as, "Ctrl+Alt+S", "Save under a new name"
        )  # not SK.SaveAs: on Linux that is Ctrl+Shift+S, the session shortcut
        self.a_save_session = self._act(
            "Save Sess&ion…",
            self.save_session_dialog,
            "Ctrl+Shift+S",
            "Save the work (image, mask, clones, methods and parameters, sampler result) as a session file",
        )
        self.a_open_session = self._act(
            "Open Sessio&n…", self.open_session_dialog, "Ctrl+Shift+O", "Reopen a saved session file"
        )
        self.a_export = self._act(
            "&Export a copy…", self.export_copy, "Ctrl+E", "Write a copy, keep working on this file"
        )
        self.a_quit = self._act("&Quit", self.close, SK.Quit)
        self.a_undo = self.undo_group.createUndoAction(self, "&Undo")
        self.a_undo.setShortcut(SK.Undo)
        self.a_redo = self.undo_group.createRedoAction(self, "&Redo")
        self.a_redo.setShortcuts([QKeySequence(SK.Redo), QKeySequence("Ctrl+Shift+Z")])
        self.addAction(self.a_undo)
        self.addAction(self.a_redo)

        self.a_fit = self._act("&Fit to window", self.canvas.fit, "Ctrl+0")
        self.a_one = self._act("Actual pixels (&1:1)", self.canvas.one_to_one, "Ctrl+1")
        self.a_zoom_in = self._act("Zoom &in", lambda: self.canvas.zoom_by(1.25), SK.ZoomIn)
        self.a_zoom_out = self._act("Zoom &out", lambda: self.canvas.zoom_by(0.8), SK.ZoomOut)
        self.a_compare = self._act(
            "&Before/after split",
            lambda on: self.canvas.set_compare(on),
            "Y",
            "Draggable split line, the original on the left",
            checkable=True,
        )
        self.a_show_mask = self._act(
            "Show &mask", lambda on: self.canvas.overlay.setVisible(on), "M", checkable=True
        )
        self.a_show_mask.setChecked(True)

        self.tool_group = QActionGroup(self)
        self.tool_actions: dict[str, QAction] = {}
        for key, text, sc, tip in (
            ("pan", "&Pan / zoom", "H", "Left drag pans"),
            ("brush", "&Brush", "B", "Paint the mask"),
            ("eraser", "&Eraser", "E", "Erase the mask"),
            ("fill", "&Fill", "G", "Fill the unpainted region under the click"),
            ("clone", "Seamless &clone", "C", "Drag the selected source; Enter commits, Esc cancels"),
        ):
            a = self._act(text, lambda _=False, k=key: self.set_tool(k), sc, tip, checkable=True)
            self.tool_group.addAction(a)
            self.tool_actions[key] = a
        self.a_bigger = self._act(
            "Larger brush", lambda: self._set_radius(self.brush_radius * 1.25, True), "]"
        )
        self.a_smaller = self._act(
            "Smaller brush", lambda: self._set_radius(self.brush_radius / 1.25, True), "["
        )
        self.a_harder = self._act("Harder brush", lambda: self._set_hardness(self.brush_hardness + 0.1), "}")
        self.a_softer = self._act("Softer brush", lambda: self._set_hardness(self.brush_hardness - 0.1), "{")
        self.a_mask_clear = self._act("&Clear mask", self.mask_clear, "Ctrl+Shift+X")
        self.a_mask_invert = self._act("&Invert mask", self.mask_invert, "Ctrl+I")
        self.a_mask_all = self._act("Select &all (mask)", self.mask_all, "Ctrl+A")
        self.a_mask_load = self._act(
            "&Load mask…", self.mask_load, None, "Load a mask from a PNG (white = on)"
        )
        self.a_mask_save = self._act("&Save mask…", self.mask_save, None, "Save the mask as an 8-bit PNG")

        self.a_denoise = self._act(
            "&Denoise", self.run_denoise, "Ctrl+R", "Denoise with the Denoise panel's method"
        )
        self.a_cancel = self._act(
            "&Cancel job / tool", self.escape, "Esc", "Cancel the running job or the clone"
        )
        self.a_cancel.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.a_commit = self._act("Commit clone", self.clone_tool.commit, ["Return", "Enter"])
        self.a_prefs_cpu = self._act(
            "Use &CPU only",
            lambda on: self.set_device("cpu" if on else "auto"),
            None,
            "Prefer the CPU even when a CUDA GPU is present",
            checkable=True,
        )
        self.a_prefs_cpu.setChecked(self.device_pref == "cpu")
        self.a_about = self._act("&About restorelab", self.about)
        self.a_keys = self._act("&Keyboard shortcuts", self.show_shortcuts, "F1")
        self.recent_actions: list[QAction] = []

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addActions([self.a_open, self.a_open_sample])
        self.recent_menu = m.addMenu("Open &recent")
        self._fill_recent()
        m.addSeparator()
        m.addActions([self.a_save, self.a_save_as, self.a_export])
        m.addSeparator()
        m.addActions([self.a_open_session, self.a_save_session])
        m.addSeparator()
        m.addActions([self.a_mask_load, self.a_mask_save])
        m.addSeparator()
        m.addAction(self.a_quit)
        m = mb.addMenu("&Edit")
        m.addActions([self.a_undo, self.a_redo])
        m.addSeparator()
        m.addActions([self.a_mask_clear, self.a_mask_invert, self.a_mask_all])
        m.addSeparator()
        m.addAction(self.a_prefs_cpu)
        m = mb.addMenu("&View")
        m.addActions([self.a_fit, self.a_one, self.a_zoom_in, self.a_zoom_out])
        m.addSeparator()
        m.addActions([self.a_compare, self.a_show_mask])
        hold = m.addAction("Hold \\ to show the original")
        hold.setEnabled(False)
        m.addSeparator()
        for d in self.findChildren(QDockWidget):
            m.addAction(d.toggleViewAction())
        m = mb.addMenu("&Tools")
        m.addActions(list(self.tool_actions.values()))
        m.addSeparator()
        m.addActions([self.a_smaller, self.a_bigger, self.a_softer, self.a_harder])
        m.addSeparator()
        self.edit_menu = m.addMenu("&Poisson editing")
        self.edit_panel.fill_menu(self.edit_menu)
        m = mb.addMenu("&Run")
        m.addAction(self.a_denoise)
        m.addActions(self.sampler_view.actions_for_menu())
        m.addActions(self.multiscale_panel.actions_for_menu())
        m.addActions(self.manifold_panel.actions_for_menu())
        m.addSeparator()
        m.addActions([self.a_commit, self.a_cancel])
        m = mb.addMenu("&Help")
        m.addActions([self.a_keys, self.a_about])

    def _build_toolbar(self) -> None:
        tb = QToolBar("Main")
        tb.setObjectName("toolbar_main")
        self.addToolBar(tb)
        tb.addActions([self.a_open, self.a_save])
        tb.addSeparator()
        tb.addActions([self.a_undo, self.a_redo])
        tb.addSeparator()
        tb.addActions(list(self.tool_actions.values()))
        tb.addSeparator()
        tb.addActions([self.a_fit, self.a_one, self.a_compare])
        tb.addSeparator()
        tb.addActions([self.a_denoise])

    def _late_init(self) -> None:
        """Things that import torch or scan the registry: after the window is up."""
        try:
            from restorelab.device import device_name

            self.device_label.setText(device_name(self.device_pref))
        except Exception as e:  # noqa: BLE001
            self.device_label.setText(f"device: {e}")
        self.refresh_core()

    def refresh_core(self) -> None:
        """Re-scan the core (modules that landed since start-up enable their actions)."""
        self.denoise_panel.refresh_methods()
        for p in (
            self.edit_panel,
            self.sampler_view,
            self.manifold_panel,
            self.multiscale_panel,
            self.clone_panel,
        ):
            refresh = getattr(p, "refresh", None)
            if refresh is not None:
                refresh()
        self._update_actions()

    # ------------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        g = self.settings.value("window/geometry")
        if g is not None:
            self.restoreGeometry(g)
        else:
            from PySide6.QtGui import QGuiApplication

            screen = QGuiApplication.primaryScreen()
            if screen is not None:
                r = screen.availableGeometry()
                self.resize(int(r.width() * 0.94), int(r.height() * 0.92))
        s = self.settings.value("window/state")
        if s is not None:
            self.restoreState(s)

    def _save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("brush/radius", self.brush_radius)
        self.settings.setValue("brush/hardness", self.brush_hardness)
        self.settings.setValue("mask/opacity", self.opacity_slider.value())
        self.settings.setValue("device", self.device_pref)
        self.settings.sync()

    def set_device(self, pref: str) -> None:
        self.device_pref = pref
        self.settings.setValue("device", pref)
        try:
            from restorelab.device import device_name

            self.device_label.setText(device_name(pref))
        except Exception as e:  # noqa: BLE001
            self.device_label.setText(str(e))

    def _recent(self) -> list[str]:
        v = self.settings.value("recent", [])
        if isinstance(v, str):
            v = [v]
        return [str(x) for x in (v or [])]

    def _add_recent(self, path: Path) -> None:
        r = [str(path)] + [p for p in self._recent() if p != str(path)]
        self.settings.setValue("recent", r[:MAX_RECENT])
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for p in self._recent():
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _=False, path=p: self.open_path(path))
        self.recent_menu.setEnabled(bool(self._recent()))

    def _last_dir(self) -> str:
        return str(self.settings.value("last_dir", str(Path.home())))

    # ------------------------------------------------------------------ documents
    @staticmethod
    def _sample() -> str:
        from restorelab.resources import sample_path

        return str(sample_path())

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", self._last_dir(), IMAGE_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | os.PathLike) -> bool:
        """Load ``path`` with ``restorelab.io.load_image``; an error dialog on failure."""
        if not self._maybe_keep_changes():
            return False
        p = Path(path)
        try:
            from restorelab.io import image_info, load_image

            img = load_image(p)
            try:
                bits = image_info(p).bit_depth
            except Exception:  # noqa: BLE001
                bits = None
        except Exception as e:  # noqa: BLE001 - every failure is shown, never a crash
            import traceback

            dialogs.error(self, "Cannot open image", f"Could not open {p.name}:\n{e}", traceback.format_exc())
            return False
        self.set_document(Document(img, p, bit_depth=bits))
        self.settings.setValue("last_dir", str(p.parent))
        self._add_recent(p.resolve())
        return True

    def set_document(self, doc: Document) -> None:
        if self.jobs.busy:
            self.jobs.cancel()
            self.jobs.wait(3000)
        self.clone_tool.cancel()
        self.preview_runner.cancel()
        old = self.doc
        self.doc = doc
        if old is not None:
            self.undo_group.removeStack(old.undo)
            self.wait_autosave()
            self.autosaver.clear()  # the previous work was saved or let go by the user
            self.session_path = None
        self.undo_group.addStack(doc.undo)
        self.undo_group.setActiveStack(doc.undo)
        doc.image_changed.connect(self._image_changed)
        doc.mask_changed.connect(self._mask_changed)
        doc.dirty_changed.connect(lambda _: self._update_title())
        doc.path_changed.connect(self._update_title)
        self.canvas.set_image(doc.image, doc.original, fit=True)
        self.canvas.set_mask(doc.mask)
        self.canvas.show_preview(None)
        self._update_title()
        self._update_actions()
        self.document_changed.emit()
        self.statusBar().showMessage(
            f"Opened {doc.title}: {doc.image.shape[1]}×{doc.image.shape[0]}"
            + (f", {doc.bit_depth}-bit" if doc.bit_depth else ""),
            4000,
        )

    def _image_changed(self, rect: Any) -> None:
        doc = self.doc
        if doc is None:
            return
        if rect is None or self.canvas.image is not doc.image:
            self.canvas.set_image(doc.image, doc.original)
        else:
            self.canvas.update_rect(rect)
        self.canvas.show_preview(None)
        self._preview_key = None

    def _mask_changed(self, rect: Any) -> None:
        doc = self.doc
        if doc is None:
            return
        if rect is None:
            self.canvas.set_mask(doc.mask)
        else:
            self.canvas.overlay.update_rect(rect)

    def _update_title(self) -> None:
        d = self.doc
        t = "restorelab"
        if d is not None:
            t = f"{d.title}{' *' if d.dirty else ''} — restorelab"
        self.setWindowTitle(t)

    def _update_actions(self) -> None:
        has = self.doc is not None
        for a in (
            self.a_save,
            self.a_save_as,
            self.a_save_session,
            self.a_export,
            self.a_mask_clear,
            self.a_mask_invert,
            self.a_mask_all,
            self.a_mask_load,
            self.a_mask_save,
            self.a_fit,
            self.a_one,
        ):
            a.setEnabled(has)
        ok = has and self.denoise_panel.method.count() > 0
        self.a_denoise.setEnabled(ok)
        self.a_denoise.setToolTip("Denoise the image" if ok else compat.why("restorelab.denoise"))

    def _maybe_keep_changes(self) -> bool:
        """True when it is fine to drop the current document (saved, or user agreed)."""
        if self.doc is None or not self.doc.dirty:
            return True
        r = dialogs.save_discard_cancel(self, "Unsaved changes", f"Save the changes to {self.doc.title}?")
        if r == "save":
            return self.save()
        return r == "discard"

    # ------------------------------------------------------------------ saving
    def _bits_for(self, path: Path) -> int | None:
        d = self.doc
        if d is not None and d.bit_depth == 16 and path.suffix.lower() in (".png", ".tif", ".tiff"):
            return 16
        return None

    def _write(self, path: Path, image: np.ndarray, overwrite: bool) -> bool:
        try:
            from restorelab.io import save_image

            save_image(path, image, overwrite=overwrite, bit_depth=self._bits_for(path))
        except Exception as e:  # noqa: BLE001
            import traceback

            dialogs.error(self, "Cannot save", f"Could not save {path.name}:\n{e}", traceback.format_exc())
            return False
        return True

    def _is_original(self, path: Path) -> bool:
        d = self.doc
        if d is None or d.path is None:
            return False
        try:
            return path.resolve() == d.path.resolve()
        except OSError:
            return False

    def save_to(self, path: str | os.PathLike, *, confirmed: bool = False) -> bool:
        """Save the document to ``path``. Replacing the opened original asks first."""
        d = self.doc
        if d is None:
            return False
        p = Path(path)
        if self._is_original(p) and not confirmed:
            if not dialogs.confirm(
                self,
                "Replace the original?",
                f"{p.name} is the image you opened. Replace it with the edited version?",
            ):
                return False
        overwrite = p.exists()
        if not self._write(p, d.image, overwrite):
            return False
        d.mark_saved(p)
        self._add_recent(p.resolve())
        self.statusBar().showMessage(f"Saved {p}", 4000)
        return True

    def save(self) -> bool:
        d = self.doc
        if d is None:
            return False
        if d.saved_path is not None:
            return self.save_to(d.saved_path, confirmed=not self._is_original(d.saved_path))
        return self.save_as()

    def _suggest(self, suffix: str) -> str:
        d = self.doc
        base = d.path if d is not None and d.path else Path(self._last_dir()) / "untitled.png"
        return str(base.with_name(base.stem + suffix + (base.suffix or ".png")))

    def save_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(self, "Save image as", self._suggest("_restored"), IMAGE_FILTER)
        if not path:
            return False
        return self.save_to(path, confirmed=False)

    def export_copy(self) -> bool:
        d = self.doc
        if d is None:
            return False
        path, _ = QFileDialog.getSaveFileName(self, "Export a copy", self._suggest("_export"), IMAGE_FILTER)
        if not path:
            return False
        p = Path(path)
        if self._is_original(p) and not dialogs.confirm(
            self, "Replace the original?", f"{p.name} is the image you opened. Replace it?"
        ):
            return False
        return self._write(p, d.image, p.exists())

    # ------------------------------------------------------------------ sessions
    def save_session_dialog(self) -> bool:
        d = self.doc
        if d is None:
            return False
        if self.session_path is not None:
            suggest = str(self.session_path)
        else:
            base = d.path if d.path else Path(self._last_dir()) / "untitled"
            suggest = str(base.with_suffix(".rlsession"))
        path, _ = QFileDialog.getSaveFileName(self, "Save session", suggest, SESSION_FILTER)
        if not path:
            return False
        return self.save_session_to(path)

    def save_session_to(self, path: str | os.PathLike) -> bool:
        """Write the current work as a session file (``restorelab.session.save_session``)."""
        if self.doc is None:
            return False
        p = Path(path)
        if p.suffix == "":
            p = p.with_suffix(".rlsession")
        try:
            from restorelab.gui.session_io import collect_session
            from restorelab.session import save_session

            save_session(p, collect_session(self))
        except Exception as e:  # noqa: BLE001 - shown, never a crash
            import traceback

            dialogs.error(self, "Cannot save the session", f"Could not save {p.name}:\n{e}",
                          traceback.format_exc())
            return False
        self.session_path = p
        self.statusBar().showMessage(f"Session saved to {p}", 4000)
        return True

    def open_session_dialog(self) -> bool:
        path, _ = QFileDialog.getOpenFileName(self, "Open session", self._last_dir(), SESSION_FILTER)
        if not path:
            return False
        return self.open_session(path)

    def open_session(self, path: str | os.PathLike, *, recovered: bool = False) -> bool:
        """Reopen a session file: pixels, mask, clones, panel parameters, sampler result.

        A damaged or newer file gives an error dialog and leaves the current document as it was.
        """
        if not recovered and not self._maybe_keep_changes():
            return False
        p = Path(path)
        try:
            from restorelab.gui.session_io import build_document
            from restorelab.session import load_session

            s = load_session(p)
            doc = build_document(s)
        except Exception as e:  # noqa: BLE001 - SessionError and anything else: a dialog
            import traceback

            dialogs.error(self, "Cannot open the session", f"Could not open {p.name}:\n{e}",
                          traceback.format_exc())
            return False
        from restorelab.gui.session_io import apply_panels, show_sampler_result

        self.set_document(doc)
        notes = list(s.warnings) + apply_panels(self, s)
        try:
            show_sampler_result(self, doc)
        except Exception as e:  # noqa: BLE001 - the document is open; the plot is a bonus
            notes.append(f"the sampler result could not be shown ({e})")
        self.canvas.show_preview(None)
        if recovered:
            doc.undo.resetClean()  # recovered work is not saved anywhere yet
            self._update_title()
        else:
            self.session_path = p
            self.settings.setValue("last_dir", str(p.parent))
        msg = ("Recovered" if recovered else "Opened") + f" session {p.name}"
        if notes:
            msg += " — " + "; ".join(notes)
        self.statusBar().showMessage(msg, 8000)
        return True

    # autosave ---------------------------------------------------------------------
    def autosave(self, *, force: bool = False, background: bool | None = None) -> Path | None:
        """Autosave the current work (``Autosaver.maybe_save``); never raises.

        The session is gathered (copied) on the GUI thread; a large one (over
        ``AUTOSAVE_BACKGROUND_BYTES``, or ``background=True``) is written by a background
        thread, one at a time, and None is returned.
        """
        if self.doc is None or not self.autosaver.enabled:
            return None
        if self._autosave_thread is not None and self._autosave_thread.is_alive():
            return None  # the previous autosave is still being written
        try:
            from restorelab.gui.session_io import collect_session

            session = collect_session(self)
            if background is None:
                background = session.image is not None and session.image.nbytes > AUTOSAVE_BACKGROUND_BYTES
            if background:
                t = threading.Thread(target=self.autosaver.maybe_save, args=(session,),
                                     kwargs={"force": force}, name="restorelab-autosave", daemon=True)
                self._autosave_thread = t
                t.start()
                return None
            out = self.autosaver.maybe_save(session, force=force)
        except Exception as e:  # noqa: BLE001 - autosave must never disturb the user
            self.statusBar().showMessage(f"autosave failed: {e}", 5000)
            return None
        if out is None and self.autosaver.last_error:
            self.statusBar().showMessage(self.autosaver.last_error, 5000)
        return out

    def wait_autosave(self, timeout: float = 60.0) -> None:
        """Join a background autosave (before clearing the autosaves or quitting)."""
        t = self._autosave_thread
        if t is not None:
            t.join(timeout)
            self._autosave_thread = None

    def autosave_if_dirty(self) -> Path | None:
        """The timer's tick: autosave when there are unsaved changes and no job runs."""
        if self.doc is None or not self.doc.dirty:
            return None
        return self.autosave(force=True)

    def offer_recovery(self) -> bool:
        """After a crash (autosaves of a process that is gone): Restore or Discard them.

        Restores the newest into this window; the others are discarded either way.
        """
        if self._recovery_checked or not self.autosaver.enabled:
            return False
        self._recovery_checked = True
        found = self.autosaver.recover()
        if not found:
            return False
        newest = found[0]
        what = Path(newest.image_path).name if newest.image_path else "an untitled image"
        when = f" (saved {newest.saved_at})" if newest.saved_at else ""
        more = f"\n{len(found) - 1} older autosave(s) will be discarded." if len(found) > 1 else ""
        restore = dialogs.restore_or_discard(
            self,
            "Recover unsaved work?",
            f"restorelab did not close cleanly last time. Restore the autosaved work on {what}{when}?{more}",
        )
        ok = False
        if restore:
            ok = self.open_session(newest.path, recovered=True)
            if ok:
                self.autosave(force=True)  # kept under this run's name before the old one goes
        if ok or not restore:
            for rec in found:
                self.autosaver.discard(rec)
        return ok

    # ------------------------------------------------------------------ mask
    def mask_clear(self) -> None:
        if self.doc is not None:
            self.doc.apply_mask(np.zeros_like(self.doc.mask), "Clear mask")

    def mask_invert(self) -> None:
        if self.doc is not None:
            self.doc.apply_mask(255 - self.doc.mask, "Invert mask")

    def mask_all(self) -> None:
        if self.doc is not None:
            self.doc.apply_mask(np.full_like(self.doc.mask, 255), "Mask everything")

    def mask_load(self, path: str | None = None) -> bool:
        d = self.doc
        if d is None:
            return False
        if not path:
            path, _ = QFileDialog.getOpenFileName(self, "Load mask", self._last_dir(), IMAGE_FILTER)
            if not path:
                return False
        try:
            from restorelab.io import load_image

            m = load_image(path)
            if m.ndim == 3:
                m = m[..., :3].mean(axis=2)
            if m.shape != d.mask.shape:
                raise ValueError(
                    f"the mask is {m.shape[1]}×{m.shape[0]}, the image {d.mask.shape[1]}×{d.mask.shape[0]}"
                )
        except Exception as e:  # noqa: BLE001
            dialogs.error(self, "Cannot load mask", str(e))
            return False
        d.apply_mask(m.astype(np.float32), "Load mask")
        return True

    def mask_save(self, path: str | None = None) -> bool:
        d = self.doc
        if d is None:
            return False
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Save mask", self._suggest("_mask"), "PNG (*.png)")
            if not path:
                return False
        p = Path(path)
        try:
            from restorelab.io import save_image

            save_image(p, d.mask.astype(np.float32) / 255.0, overwrite=p.exists())
        except Exception as e:  # noqa: BLE001
            dialogs.error(self, "Cannot save mask", str(e))
            return False
        return True

    def _set_radius(self, r: float, sync: bool = False) -> None:
        self.brush_radius = float(min(max(r, 1.0), 400.0))
        if sync:
            self.radius_slider.setValue(self.brush_radius)
        if self.canvas.brush_radius:
            self.canvas.set_brush_cursor(self.brush_radius)

    def _set_hardness(self, h: float) -> None:
        self.brush_hardness = float(min(max(h, 0.0), 1.0))
        self.hardness_slider.setValue(self.brush_hardness)

    # ------------------------------------------------------------------ tools
    def set_tool(self, key: str) -> None:
        if key != "clone" and self.clone_tool.active:
            self.clone_tool.cancel()
        handlers = {
            "pan": None,
            "brush": BrushHandler(self),
            "eraser": BrushHandler(self, erase=True),
            "fill": FillHandler(self),
            "clone": self.clone_tool,
        }
        self.tool = key
        self.canvas.handler = handlers[key]
        self.canvas.set_brush_cursor(self.brush_radius if key in ("brush", "eraser") else None)
        self.tool_actions[key].setChecked(True)
        if key in ("brush", "eraser", "fill"):
            self.mask_dock.raise_()
        elif key == "clone":
            self.clone_dock.raise_()

    def escape(self) -> None:
        if self.clone_tool.active:
            self.clone_tool.cancel()
        elif self.jobs.busy:
            self.jobs.cancel()

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
            self.canvas.show_original(True)
            return
        super().keyPressEvent(ev)

    def keyReleaseEvent(self, ev: Any) -> None:  # noqa: N802
        if ev.key() == Qt.Key.Key_Backslash and not ev.isAutoRepeat():
            self.canvas.show_original(False)
            return
        super().keyReleaseEvent(ev)

    # ------------------------------------------------------------------ jobs
    def start_job(
        self,
        title: str,
        factory: Any,
        on_done: Any,
        *,
        on_progress: Any = None,
        on_error: Any = None,
        rate: float = 10.0,
    ) -> bool:
        """Run ``factory()`` (a core job) in the worker; refuse while another runs."""
        if self.jobs.busy:
            self.statusBar().showMessage(
                f"“{self.jobs.title}” is still running — one job at a time per document; Esc cancels it.",
                5000,
            )
            return False

        def err(msg: str, details: str, exc: BaseException) -> None:
            if on_error is not None and on_error(msg, details, exc):
                return
            dialogs.error(self, f"{title} failed", msg, details)

        return self.jobs.start(title, factory, on_done, on_progress=on_progress, on_error=err, rate=rate)

    def _job_started(self, title: str) -> None:
        self.job_label.setText(title + " …")
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setVisible(True)
        self.cancel_button.setVisible(True)

    def _job_progress(self, batch: list[Progress]) -> None:
        for e in batch:
            note = e.data.get(OOM_KEY) if isinstance(e.data, dict) else None
            if note:
                self._job_note = str(note)
                self.statusBar().showMessage(self._job_note, 15000)
        ev = batch[-1]
        if ev.total:
            self.progress_bar.setRange(0, int(ev.total))
            self.progress_bar.setValue(int(min(ev.step, ev.total)))
        if ev.message:
            self.job_label.setText(f"{self.jobs.title}: {ev.message}")

    def _job_finished(self, outcome: str, title: str) -> None:
        self.progress_bar.setVisible(False)
        self.cancel_button.setVisible(False)
        self.job_label.setText("")
        msg = {"done": "finished", "cancelled": "cancelled — nothing changed", "failed": "failed"}[outcome]
        if self._job_note:
            msg += f" ({self._job_note})"
            self._job_note = ""
        self.statusBar().showMessage(f"{title}: {msg}", 15000 if "memory" in msg else 5000)
        if outcome == "done":
            self.autosave(force=True)

    def _denoiser(self, name: str, values: dict[str, Any], device: str) -> Any:
        from restorelab import denoise

        return denoise.get(name, device=device, **values)

    def run_denoise(self, *, device: str | None = None) -> bool:
        """Denoise the whole image (or inside the mask) with the panel's method."""
        d, panel = self.doc, self.denoise_panel
        if d is None or panel.method_name() is None:
            return False
        name, sigma, values = panel.method_name(), panel.sigma_value(), panel.values()
        dev = device or self.device_pref
        y = d.image.copy()
        mask = d.mask_bool().copy() if panel.in_mask.isChecked() and d.has_mask() else None
        title = panel.method.currentText()
        self.preview_runner.cancel()

        def factory() -> Any:
            if dev == "cpu":
                return self._denoiser(name, values, dev).job(y, sigma)
            holder: dict[str, Any] = {}

            def primary() -> Any:
                holder["den"] = self._denoiser(name, values, dev)
                return holder["den"].job(y, sigma)

            def tiled() -> Any:
                from restorelab.safety import tiled_apply

                den = holder.get("den") or self._denoiser(name, values, dev)
                return tiled_apply(lambda t: den(t, sigma), y)

            def cpu() -> Any:
                holder.clear()  # let the GPU model go before the CPU copy is built
                return self._denoiser(name, values, "cpu").job(y, sigma)

            return oom_fallback_job(primary, tiled=tiled, cpu=cpu)

        def done(out: Any) -> None:
            out = np.asarray(out, np.float32)
            if mask is not None:
                out = np.where(mask[..., None] if out.ndim == 3 else mask, out, y)
            d.meta["last_denoise"] = {"method": name, "sigma": sigma, "params": values}
            d.apply_image(out, f"Denoise: {title}, σ={sigma * 255:.1f}")

        def progress(batch: list[Progress]) -> None:
            prev = next((e.preview for e in reversed(batch) if e.preview is not None), None)
            if prev is not None and np.shape(prev)[:2] == y.shape[:2]:
                self.canvas.show_preview(np.asarray(prev))

        return self.start_job(f"Denoise ({title})", factory, done, on_progress=progress)

    # live preview --------------------------------------------------------------
    def _view_moved(self) -> None:
        if (
            self.denoise_panel.live.isChecked()
            and self.canvas.preview_item.isVisible()
            and not self.jobs.busy
        ):
            self.denoise_panel._debounce.poke()  # noqa: SLF001

    def request_preview(self) -> None:
        """Recompute the live preview of a ≤256² crop of the view (latest request wins)."""
        d, panel = self.doc, self.denoise_panel
        if (
            d is None
            or not panel.live.isChecked()
            or not panel.fast()
            or self.jobs.busy
            or not self.denoise_dock.isVisible()
        ):
            self.canvas.show_preview(None)
            return
        vr = self.canvas.visible_rect()
        if vr is None:
            return
        y0, x0, y1, x1 = vr
        cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
        hh, hw = min(128, (y1 - y0) // 2 or 1), min(128, (x1 - x0) // 2 or 1)
        y0, x0 = max(0, cy - hh), max(0, cx - hw)
        y1, x1 = min(d.shape[0], cy + hh), min(d.shape[1], cx + hw)
        crop = d.image[y0:y1, x0:x1].copy()
        name, sigma, values, dev = panel.method_name(), panel.sigma_value(), panel.values(), self.device_pref
        key = (id(d), y0, x0)
        self._preview_key = key

        def compute(token: Any) -> Any:
            return run_job(self._denoiser(name, values, dev).job(crop, sigma), cancel=token)

        self.preview_runner.request(compute, key)

    def _preview_ready(self, out: Any, tag: Any) -> None:
        key = tag
        if key != self._preview_key or self.jobs.busy or self.doc is None or id(self.doc) != key[0]:
            return
        self.canvas.show_preview(np.asarray(out), (key[1], key[2]))

    # ------------------------------------------------------------------ help
    def versions(self) -> dict[str, str]:
        import pyqtgraph
        import PySide6
        import superqt

        v = {
            "restorelab": _core_version(),
            "Python": platform.python_version(),
            "PySide6": PySide6.__version__,
            "Qt": PySide6.QtCore.qVersion(),
            "pyqtgraph": pyqtgraph.__version__,
            "superqt": superqt.__version__,
            "numpy": np.__version__,
        }
        try:
            import torch

            v["torch"] = torch.__version__
        except Exception:  # noqa: BLE001
            v["torch"] = "missing"
        return v

    def about(self) -> None:
        rows = "".join(f"<tr><td>{k}</td><td>{val}</td></tr>" for k, val in self.versions().items())
        QMessageBox.about(
            self,
            "About restorelab",
            "<h3>restorelab</h3><p>Image restoration built on denoisers: classical and learned "
            "denoisers, Poisson editing and sampling from the prior implicit in a denoiser.</p>"
            f"<table>{rows}<tr><td>Device</td><td>{self.device_label.text()}</td></tr></table>"
            f"<p>{sys.platform}</p>",
        )

    def show_shortcuts(self) -> None:
        rows = []
        for a in self.actions():
            if a.shortcut().toString():
                rows.append(
                    f"<tr><td><b>{a.shortcut().toString()}</b></td><td>{a.text().replace('&', '')}</td></tr>"
                )
        rows.append("<tr><td><b>\\ (hold)</b></td><td>Show the original</td></tr>")
        rows.append("<tr><td><b>Shift+drag</b></td><td>Erase with the brush</td></tr>")
        QMessageBox.information(self, "Keyboard shortcuts", "<table>" + "".join(rows) + "</table>")

    # ------------------------------------------------------------------ drag and drop, close
    def dragEnterEvent(self, ev: Any) -> None:  # noqa: N802
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev: Any) -> None:  # noqa: N802
        urls = ev.mimeData().urls()
        if urls:
            self.open_path(urls[0].toLocalFile())

    def closeEvent(self, ev: Any) -> None:  # noqa: N802
        if not self._maybe_keep_changes():
            ev.ignore()
            return
        self.shutdown()
        self.autosaver.clear()  # a clean exit: nothing to recover
        ev.accept()

    def shutdown(self) -> None:
        """Cancel and join every background thread."""
        self._save_settings()
        self.jobs.cancel()
        self.jobs.wait(5000)
        self.preview_runner.stop()
        self.autosave_timer.stop()
        self.wait_autosave()
        self.clone_tool.shutdown()
        self.multiscale_panel.shutdown()


def make_panel(title: str, *widgets: QWidget) -> QWidget:
    """A plain vertical panel (used by docks built elsewhere)."""
    w = QWidget()
    lay = QVBoxLayout(w)
    if title:
        lay.addWidget(QLabel(title))
    for x in widgets:
        lay.addWidget(x)
    lay.addStretch(1)
    return w
