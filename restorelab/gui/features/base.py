"""What every feature provides to the window: a dock, actions, tools, state and shutdown."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from restorelab.gui.context import AppContext
from restorelab.gui.document import Document
from restorelab.session import MethodChoice
from restorelab.workspace import Workspace

Area = Qt.DockWidgetArea


class Feature(QObject):
    """A capability of the window.

    ``key`` names it (dock object name, the workspace's method slot); ``title`` is the dock
    title; ``area`` where its dock goes and ``tab_with`` the key of the dock it is tabbed
    with. The window calls :meth:`dock`, :meth:`actions` (each action's ``menu`` property
    names its menu), :meth:`state` before saving, :meth:`restore` after opening a session,
    and :meth:`shutdown` on close; :meth:`document_changed` runs whenever the document is
    replaced, so no feature keeps results that belong to another image.
    """

    key = "feature"
    title = "Feature"
    area = Area.RightDockWidgetArea
    tab_with: str | None = None

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx)
        self.ctx = ctx
        ctx.document_changed.connect(self.document_changed)

    @property
    def doc(self) -> Document | None:
        return self.ctx.doc

    def dock(self) -> QWidget | None:
        return None

    def actions(self) -> list[QAction]:
        return []

    def action(
        self, text: str, slot: Any, *, menu: str, shortcut: Any = None, tip: str = "", checkable: bool = False
    ) -> QAction:
        """A ``QAction`` for the window's ``menu`` ("File", "Edit", "View", "Tools", "Run")."""
        from PySide6.QtGui import QKeySequence

        a = QAction(text, self)
        if shortcut is not None:
            seq = shortcut if isinstance(shortcut, list | tuple) else [shortcut]
            a.setShortcuts([QKeySequence(s) for s in seq])
        if tip:
            a.setToolTip(tip)
            a.setStatusTip(tip)
        a.setCheckable(checkable)
        a.setProperty("menu", menu)
        a.triggered.connect(slot)
        return a

    def document_changed(self, doc: Document | None) -> None:
        """The document was replaced: drop what belonged to the previous one."""

    def state(self, ws: Workspace) -> None:
        """Write this feature's choices into ``ws`` (``ws.methods[self.key]``, ...)."""

    def restore(self, ws: Workspace) -> list[str]:
        """Set the widgets back from ``ws``; returns notes on what could not be restored."""
        return []

    def method(self, ws: Workspace) -> MethodChoice | None:
        return ws.methods.get(self.key)

    def shutdown(self) -> None:
        """Stop background threads of this feature."""
