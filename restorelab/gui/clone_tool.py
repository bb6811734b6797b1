"""Seamless cloning tool and the Poisson-editing panel (all solving in ``restorelab.edit``).

Workflow: choose the source region (the painted mask, or an ellipse you place on the
canvas) and the source image (this image or another file), pick *import*, *mixed* or
*average* gradients, then drag on the canvas with the clone tool (C): the core's
prepared :class:`CloneSession` re-solves at each position (``place(dst, offset)`` in a
background thread, latest position wins) and the canvas shows the seamless result live.
Enter commits (one undoable step), Esc cancels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from restorelab.gui import compat, dialogs
from restorelab.gui.panels.params_panel import ParamForm
from restorelab.gui.worker import LatestRunner

if TYPE_CHECKING:
    from PySide6.QtWidgets import QMenu

    from restorelab.gui.main_window import MainWindow

MODES = ("import", "mixed", "average")
OP_TITLES = {
    "flatten": "Texture flattening",
    "illumination": "Local illumination change",
    "color": "Local colour change",
    "contrast": "Contrast enhancement",
    "tile": "Seamless tiling",
}
OP_NOTES = {
    "flatten": "Keeps the gradients only on edges (Canny): flattens texture inside the mask, or everywhere.",
    "illumination": "Compresses strong gradients (Fattal et al. 2002) to even the lighting inside the mask.",
    "color": "Multiplies the gradients of each colour channel inside the mask.",
    "contrast": "Scales the gradients inside the mask: > 1 more local contrast.",
    "tile": "Makes the whole image tile seamlessly (periodic Poisson solve).",
}


def ellipse_mask(shape: tuple[int, int], x: float, y: float, w: float, h: float) -> np.ndarray:
    """Boolean mask of the axis-aligned ellipse inscribed in the box (x, y, w, h)."""
    H, W = shape
    cy, cx, ry, rx = y + h / 2, x + w / 2, max(h / 2, 0.5), max(w / 2, 0.5)
    yy = (np.arange(H, dtype=np.float32)[:, None] + 0.5 - cy) / ry
    xx = (np.arange(W, dtype=np.float32)[None, :] + 0.5 - cx) / rx
    return (yy * yy + xx * xx) <= 1.0


class CloneTool(QObject):
    """Canvas handler + state of one clone placement."""

    state_changed = Signal()

    def __init__(self, win: MainWindow) -> None:
        super().__init__(win)
        self.win = win
        self.mode = "import"
        self.solver = "auto"
        self.source_kind = "mask"  # or "ellipse"
        self.source_image: np.ndarray | None = None  # None: the document itself
        self.source_name = "this image"
        self.session: Any = None
        self.session_key: Any = None
        self.offset = (0, 0)
        self.active = False
        self.placements = 0
        self._press: tuple[float, float] | None = None
        self._offset0 = (0, 0)
        self._dst: np.ndarray | None = None
        self.last_result: np.ndarray | None = None
        self.runner = LatestRunner(self)
        self.runner.ready.connect(self._placed)
        self.runner.error.connect(lambda m: win.statusBar().showMessage(f"Clone: {m}", 5000))
        self.roi: pg.EllipseROI | None = None

    # -- availability ---------------------------------------------------------------------
    @staticmethod
    def available() -> bool:
        return compat.attr("restorelab.edit", "prepare") is not None

    # -- source -------------------------------------------------------------------------
    def set_mode(self, mode: str, solver: str | None = None) -> None:
        """Guidance field (``import``, ``mixed``, ``average``, … from the core) and solver."""
        modes = compat.attr("restorelab.edit", "CLONE_MODES") or MODES
        if mode not in modes:
            raise ValueError(f"mode must be one of {', '.join(modes)}")
        self.mode = mode
        if solver is not None:
            self.solver = solver
        self.session = None
        if self.active:
            if self.prepare():
                self._request()
            else:
                self.cancel()

    def set_source_kind(self, kind: str) -> None:
        self.source_kind = kind
        self.session = None
        self.state_changed.emit()
        if kind == "ellipse":
            self._ensure_roi()
        elif self.roi is not None:
            self.roi.setVisible(False)

    def _ensure_roi(self) -> None:
        doc = self.win.doc
        if doc is None:
            return
        H, W = doc.shape[:2]
        if self.roi is None:
            self.roi = pg.EllipseROI(
                [W * 0.4, H * 0.4], [W * 0.2, H * 0.2], pen=pg.mkPen((80, 220, 255), width=2)
            )
            self.roi.setZValue(25)
            self.win.canvas.vb.addItem(self.roi)
            self.roi.sigRegionChangeFinished.connect(lambda *_: setattr(self, "session", None))
        self.roi.setVisible(True)

    def set_ellipse(self, x: float, y: float, w: float, h: float) -> None:
        """Place the ellipse source (image coordinates)."""
        self.set_source_kind("ellipse")
        if self.roi is not None:
            self.roi.setPos((x, y))
            self.roi.setSize((w, h))
        self.session = None

    def load_source(self, path: str | None = None) -> bool:
        if not path:
            path, _ = QFileDialog.getOpenFileName(self.win, "Source image", self.win._last_dir())  # noqa: SLF001
            if not path:
                return False
        try:
            from restorelab.io import load_image

            self.source_image = load_image(path)
        except Exception as e:  # noqa: BLE001
            dialogs.error(self.win, "Cannot open source", str(e))
            return False
        self.source_name = path
        self.session = None
        self.state_changed.emit()
        return True

    def use_document_as_source(self) -> None:
        self.source_image = None
        self.source_name = "this image"
        self.session = None
        self.state_changed.emit()

    def source_mask(self) -> np.ndarray:
        """The source region as booleans, in the source image's frame."""
        doc = self.win.doc
        src = self.source_image if self.source_image is not None else doc.image
        shape = src.shape[:2]
        if self.source_kind == "ellipse" and self.roi is not None:
            x, y = self.roi.pos()
            w, h = self.roi.size()
            return ellipse_mask(shape, x, y, w, h)
        m = doc.mask_bool()
        if m.shape != shape:
            raise ValueError("the painted mask belongs to this image; use an ellipse on the source image")
        return m

    # -- session ------------------------------------------------------------------------
    def prepare(self) -> bool:
        """Build the core's CloneSession (source, region, mode)."""
        doc = self.win.doc
        if doc is None:
            return False
        prepare = compat.attr("restorelab.edit", "prepare")
        if prepare is None:
            dialogs.info(self.win, "Seamless cloning", compat.why("restorelab.edit"))
            return False
        try:
            mask = self.source_mask()
            if not mask.any():
                raise ValueError("the source region is empty: paint a mask (B) or choose the ellipse")
            src = (self.source_image if self.source_image is not None else doc.image).copy()
            self.session = prepare(src, mask, self.mode, self.solver)
            self._src_mask = mask
        except Exception as e:  # noqa: BLE001
            import traceback

            dialogs.error(self.win, "Cannot start the clone", str(e), traceback.format_exc())
            self.session = None
            return False
        return True

    def begin(self, offset: tuple[int, int] = (0, 0)) -> bool:
        """Start a placement at ``offset`` = (dy, dx)."""
        doc = self.win.doc
        if doc is None:
            return False
        if self.session is None and not self.prepare():
            return False
        self._dst = doc.image.copy()
        self.offset = (int(offset[0]), int(offset[1]))
        self.active = True
        if self.roi is not None:
            self.roi.setVisible(False)
        self._request()
        self.state_changed.emit()
        return True

    def move_to(self, offset: tuple[int, int]) -> None:
        self.offset = (int(offset[0]), int(offset[1]))
        self._request()
        self.state_changed.emit()

    def _request(self) -> None:
        if not self.active or self.session is None:
            return
        session, dst, off = self.session, self._dst, self.offset

        def compute(token: Any) -> Any:
            return session.place(dst, offset=off)

        self.runner.request(compute, off)

    def _placed(self, result: Any, tag: Any) -> None:
        if not self.active:
            return
        off = tag
        self.placements += 1
        self.last_result = np.asarray(result)
        self.win.canvas.show_preview(self.last_result)
        self.win.statusBar().showMessage(
            f"Clone at offset dy={off[0]}, dx={off[1]} — Enter commits, Esc cancels", 3000
        )

    def commit(self) -> bool:
        """Apply the clone at the current offset (one undoable step)."""
        doc = self.win.doc
        if not self.active or doc is None or self.session is None:
            return False
        self.runner.cancel()
        try:
            out = self.session.place(self._dst, offset=self.offset)
        except Exception as e:  # noqa: BLE001
            dialogs.error(self.win, "Clone failed", str(e))
            return False
        self.active = False
        self.win.canvas.show_preview(None)
        doc.meta.setdefault("clones", []).append(
            {
                "offset": list(self.offset),
                "mode": self.mode,
                "solver": self.solver,
                "source": self.source_name,
                "mask": self._src_mask.copy(),  # source region, for session files
            }
        )
        doc.apply_image(out, f"Seamless clone ({self.mode})")
        self.session = None if self.source_image is None else self.session  # the image changed
        self.state_changed.emit()
        return True

    def cancel(self) -> None:
        if not self.active:
            return
        self.active = False
        self.runner.cancel()
        self.win.canvas.show_preview(None)
        if self.roi is not None and self.source_kind == "ellipse":
            self.roi.setVisible(True)
        self.state_changed.emit()

    def shutdown(self) -> None:
        self.runner.stop()

    # -- canvas handler --------------------------------------------------------------------
    def press(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        if not self.active and not self.begin(self.offset):
            return
        self._press = (x, y)
        self._offset0 = self.offset

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        if self._press is None:
            return
        dx, dy = x - self._press[0], y - self._press[1]
        self.move_to((int(round(self._offset0[0] + dy)), int(round(self._offset0[1] + dx))))

    def release(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        self.move(x, y, mods)
        self._press = None

    def click(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        if not self.active:
            self.begin(self.offset)


class ClonePanel(QWidget):
    """Source, gradient mode and the commit/cancel buttons of the clone tool."""

    def __init__(self, tool: CloneTool) -> None:
        super().__init__()
        self.tool = tool
        form = QFormLayout(self)
        self.kind = QComboBox()
        self.kind.addItem("Painted mask", "mask")
        self.kind.addItem("Ellipse (drag its handles)", "ellipse")
        self.kind.currentIndexChanged.connect(lambda _: tool.set_source_kind(self.kind.currentData()))
        form.addRow("Source region", self.kind)
        self.src_label = QLabel("this image")
        b_src = QPushButton("Other image…")
        b_src.clicked.connect(lambda: tool.load_source())
        b_this = QPushButton("This image")
        b_this.clicked.connect(tool.use_document_as_source)
        form.addRow("Source image", self.src_label)
        form.addRow(b_src, b_this)
        ops = compat.attr("restorelab.edit", "OPERATIONS") or {}
        self.params = ParamForm(ops.get("clone", ()))
        self.params.changed.connect(self._params_changed)
        form.addRow(self.params)
        self.start = QPushButton("Pick up source  (C, then drag)")
        self.start.clicked.connect(lambda: (tool.win.set_tool("clone"), tool.begin(tool.offset)))
        self.commit = QPushButton("Commit  (Enter)")
        self.commit.clicked.connect(tool.commit)
        self.cancel = QPushButton("Cancel  (Esc)")
        self.cancel.clicked.connect(tool.cancel)
        form.addRow(self.start)
        form.addRow(self.commit, self.cancel)
        self.state = QLabel()
        self.state.setWordWrap(True)
        form.addRow(self.state)
        tool.state_changed.connect(self._update)
        self.refresh()

    def _params_changed(self) -> None:
        v = self.params.values()
        if "mode" in v:
            self.tool.set_mode(v["mode"], v.get("solver"))

    def refresh(self) -> None:
        ok = self.tool.available()
        self.start.setEnabled(ok)
        self.start.setToolTip("" if ok else compat.why("restorelab.edit"))
        self._update()

    def _update(self) -> None:
        t = self.tool
        i = self.kind.findData(t.source_kind)
        if i >= 0 and i != self.kind.currentIndex():
            self.kind.blockSignals(True)
            self.kind.setCurrentIndex(i)
            self.kind.blockSignals(False)
        self.src_label.setText(t.source_name if len(t.source_name) < 40 else "…" + t.source_name[-38:])
        self.commit.setEnabled(t.active)
        self.cancel.setEnabled(t.active)
        self.state.setText(
            f"Placing at dy={t.offset[0]}, dx={t.offset[1]}"
            if t.active
            else ("Ready." if t.available() else compat.why("restorelab.edit"))
        )


class EditOpsPanel(QWidget):
    """Texture flattening, illumination, colour, contrast, seamless tiling: parameters
    generated from ``restorelab.edit.OPERATIONS``; applied inside the painted mask."""

    def __init__(self, win: MainWindow) -> None:
        super().__init__()
        self.win = win
        lay = QVBoxLayout(self)
        self.op = QComboBox()
        self.op.currentIndexChanged.connect(self._op_changed)
        lay.addWidget(QLabel("Operation"))
        lay.addWidget(self.op)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        lay.addWidget(self.scroll, 1)
        self.note = QLabel()
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        self.apply = QPushButton("Apply")
        self.apply.clicked.connect(self.run)
        lay.addWidget(self.apply)
        self.form: ParamForm | None = None
        self._menu: QMenu | None = None
        self.refresh()

    def operations(self) -> dict[str, Any]:
        ops = compat.attr("restorelab.edit", "OPERATIONS")
        return {k: v for k, v in (ops or {}).items() if k != "clone"}

    def refresh(self) -> None:
        ops = self.operations()
        cur = self.op.currentData()
        self.op.blockSignals(True)
        self.op.clear()
        for name in ops:
            self.op.addItem(OP_TITLES.get(name, name), name)
        self.op.blockSignals(False)
        if cur is not None and self.op.findData(cur) >= 0:
            self.op.setCurrentIndex(self.op.findData(cur))
        self.apply.setEnabled(bool(ops))
        self.apply.setToolTip("" if ops else compat.why("restorelab.edit"))
        self._op_changed()
        if self._menu is not None:
            self.fill_menu(self._menu)

    def fill_menu(self, menu: QMenu) -> None:
        self._menu = menu
        menu.clear()
        ops = self.operations()
        if not ops:
            a = menu.addAction("(Poisson editing not available)")
            a.setEnabled(False)
            a.setToolTip(compat.why("restorelab.edit"))
            return
        for name in ops:
            a = menu.addAction(OP_TITLES.get(name, name) + "…")
            a.triggered.connect(lambda _=False, n=name: self.show_op(n))

    def show_op(self, name: str) -> None:
        self.op.setCurrentIndex(self.op.findData(name))
        self.win.edit_dock.show()
        self.win.edit_dock.raise_()

    def _op_changed(self, *_: Any) -> None:
        name = self.op.currentData()
        params = self.operations().get(name, ()) if name else ()
        self.form = ParamForm(params)
        self.scroll.setWidget(self.form)
        self.note.setText(OP_NOTES.get(name, "") if name else compat.why("restorelab.edit"))

    def run(self) -> bool:
        """Apply the chosen operation (``restorelab.edit.job``) to the document as a job;
        inside the painted mask when there is one, else on the whole image."""
        win, doc = self.win, self.win.doc
        name = self.op.currentData()
        job = compat.attr("restorelab.edit", "job")
        if doc is None or not name or job is None:
            return False
        values = self.form.values() if self.form else {}
        img = doc.image.copy()
        mask = doc.mask_bool().copy() if name != "tile" and doc.has_mask() else None
        title = OP_TITLES.get(name, name)

        def done(out: Any) -> None:
            doc.apply_image(np.asarray(out, np.float32), title + (" (in mask)" if mask is not None else ""))

        return win.start_job(title, lambda: job(name, img, mask, **values), done)
