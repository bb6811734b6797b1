"""The window's status bar, docks, actions, menus and toolbar, built from its features.

Every feature contributes its dock (placed in its area, tabbed with ``tab_with``) and its
actions (each names its menu); the window adds the document actions (open, save,
sessions, undo/redo with fixed labels so the toolbar never moves), view actions and the
canvas tools the features registered.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QToolBar, QUndoView

from restorelab.gui import files, help


def build(self: Any) -> None:
    """Status bar, docks from the features, actions, menus and toolbar of the window."""
    sb = self.statusBar()
    self.cursor_label, self.zoom_label, self.device_label = (
        QLabel(""),
        QLabel("100 %"),
        QLabel("device: …"),
    )
    self.cursor_label.setMinimumWidth(260)
    sb.addWidget(self.cursor_label)
    for w in (
        self.ctx.job_label,
        self.ctx.progress_bar,
        self.ctx.cancel_button,
        self.zoom_label,
        self.device_label,
    ):
        sb.addPermanentWidget(w)
    self.canvas.cursor_info.connect(self.cursor_label.setText)
    self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
    for f in self.features:
        w = f.dock()
        if w is None:
            continue
        d = QDockWidget(f.title, self)
        d.setObjectName(f"dock_{f.key}")
        d.setWidget(w)
        self.addDockWidget(f.area, d)
        if f.tab_with in self.docks:
            self.tabifyDockWidget(self.docks[f.tab_with], d)
        self.docks[f.key] = d
    self.docks["history"] = d = QDockWidget("History", self)
    d.setObjectName("dock_history")
    d.setWidget(QUndoView(self.undo_group))
    self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, d)
    self.tabifyDockWidget(self.docks["poisson"], d)
    self.resizeDocks([self.docks["sampler"]], [250], Qt.Orientation.Vertical)
    self.resizeDocks([self.docks["denoise"], self.docks["mask"]], [360, 260], Qt.Orientation.Horizontal)
    for k in ("denoise", "mask", "sampler"):
        self.docks[k].raise_()
    _build_menus(self)
    g, s = self.settings.value("window/geometry"), self.settings.value("window/state")
    if g is not None:
        self.restoreGeometry(g)
    if s is not None:
        self.restoreState(s)

def _act(
    self: Any, text: str, slot: Any, shortcut: Any = None, tip: str = "", checkable: bool = False
) -> QAction:
    a = QAction(text, self)
    if shortcut is not None:
        a.setShortcuts(
            [QKeySequence(x) for x in (shortcut if isinstance(shortcut, list) else [shortcut])]
        )
    a.setToolTip(tip or text.replace("&", ""))
    a.setCheckable(checkable)
    a.triggered.connect(slot)
    self.addAction(a)
    return a

def _build_menus(self: Any) -> None:
    SK = QKeySequence.StandardKey
    self.a_open = _act(self, "&Open…", self.open_dialog, SK.Open, "Open an image")
    self.a_open_sample = _act(self, "Open &sample", lambda: self.open_path(self.sample_path()))
    self.a_save = _act(self,
        "&Save", self.save, SK.Save, "Save (asks before replacing the opened original)"
    )
    self.a_save_as = _act(self, "Save &As…", self.save_as, "Ctrl+Alt+S", "Save under a new name")
    self.a_export = _act(self, "&Export a copy…", self.export_copy, "Ctrl+E")
    self.a_save_session = _act(self, "Save Sess&ion…", self.save_session_dialog, "Ctrl+Shift+S")
    self.a_open_session = _act(self, "Open Sessio&n…", self.open_session_dialog, "Ctrl+Shift+O")
    # fixed texts: the toolbar must not change width with each command's name
    self.a_undo = _act(self, "&Undo", self.undo_group.undo, "Ctrl+Z")
    self.a_redo = _act(self, "&Redo", self.undo_group.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
    self.undo_group.canUndoChanged.connect(lambda _: self.update_actions())
    self.undo_group.canRedoChanged.connect(lambda _: self.update_actions())
    self.undo_group.undoTextChanged.connect(lambda t: self.a_undo.setToolTip(f"Undo {t}".strip()))
    self.undo_group.redoTextChanged.connect(lambda t: self.a_redo.setToolTip(f"Redo {t}".strip()))
    self.a_fit = _act(self, "&Fit to window", self.canvas.fit, "Ctrl+0")
    self.a_one = _act(self, "Actual pixels (&1:1)", self.canvas.one_to_one, "Ctrl+1")
    self.a_compare = _act(self,
        "&Before/after split",
        self.canvas.set_compare,
        "Y",
        "Draggable split line: the original on the left, the result on the right",
        checkable=True,
    )
    self.a_show_mask = _act(self, "Show &mask", self.canvas.overlay.setVisible, "M", checkable=True)
    self.a_show_mask.setChecked(True)
    self.a_cancel = _act(self, "&Cancel job / tool", self.escape, "Esc")
    self.a_cpu = _act(self,
        "Use &CPU only", lambda on: self.ctx.set_device("cpu" if on else "auto"), checkable=True
    )
    self.a_cpu.setChecked(self.ctx.device == "cpu")
    self.tool_group = QActionGroup(self)
    self.tool_actions: dict[str, QAction] = {
        "pan": _act(self, "&Pan / zoom", lambda: self.ctx.set_tool("pan"), "H", checkable=True)
    }
    for spec in self.ctx.tools.values():
        self.tool_actions[spec.key] = _act(self,
            spec.text,
            lambda _=False, k=spec.key: self.ctx.set_tool(k),
            spec.shortcut,
            spec.tip,
            checkable=True,
        )
    for a in self.tool_actions.values():
        self.tool_group.addAction(a)
    self.ctx.tool_changed.connect(lambda k: self.tool_actions[k].setChecked(True))
    mb, menus = self.menuBar(), {}
    for name in ("File", "Edit", "View", "Tools", "Run", "Help"):
        menus[name] = mb.addMenu("&" + name)
    menus["File"].addActions([self.a_open, self.a_open_sample])
    self.recent = files.RecentFiles(self.settings, menus["File"].addMenu("Open &recent"), self.open_path)
    for group in (
        [self.a_save, self.a_save_as, self.a_export],
        [self.a_open_session, self.a_save_session],
    ):
        menus["File"].addSeparator()
        menus["File"].addActions(group)
    menus["Edit"].addActions([self.a_undo, self.a_redo, self.a_cpu])
    menus["View"].addActions([self.a_fit, self.a_one, self.a_compare, self.a_show_mask])
    menus["View"].addSeparator()
    for d in self.findChildren(QDockWidget):
        menus["View"].addAction(d.toggleViewAction())
    menus["Tools"].addActions(list(self.tool_actions.values()))
    for f in self.features:
        for a in f.actions():
            self.addAction(a)
            top, _, sub = str(a.property("menu") or "Run").partition("/")
            m = menus[top]
            if sub:
                found = next((x.menu() for x in m.actions() if x.menu() and x.text() == sub), None)
                m = found or m.addMenu(sub)
            m.addAction(a)
    menus["File"].addSeparator()
    menus["File"].addAction(_act(self, "&Quit", self.close, SK.Quit))
    menus["Run"].addAction(self.a_cancel)
    menus["Help"].addAction(_act(self, "&Keyboard shortcuts", lambda: help.show_shortcuts(self), "F1"))
    menus["Help"].addAction(
        _act(self, "&About restorelab", lambda: help.about(self, self.device_label.text()))
    )
    tb = QToolBar("Main")
    tb.setObjectName("toolbar_main")
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    self.addToolBar(tb)
    for group in (
        [self.a_open, self.a_save],
        [self.a_undo, self.a_redo],
        list(self.tool_actions.values()),
        [self.a_fit, self.a_one, self.a_compare],
    ):
        tb.addActions(group)
        tb.addSeparator()
    self.toolbar = tb

