"""Seamless cloning: the clone tool (C) and its dock (all solving in ``restorelab.edit``).

Choose the source region (the painted mask, or an ellipse placed on the canvas) and the
source image (this image or another file), pick *import*, *mixed* or *average* gradients,
then drag with the clone tool: the core's prepared :class:`~restorelab.edit.CloneSession`
re-solves at each position on a background runner (latest position wins) and the canvas
shows the solved box. Enter commits: a job that waits for the running placement, reuses it
when it is for the committed offset (or places once more), and prepares the undo delta off
the GUI thread. A new drag starts from the source position again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QFileDialog, QFormLayout, QLabel, QPushButton, QWidget

from restorelab import edit
from restorelab.gui.context import AppContext, ToolSpec
from restorelab.gui.document import Document
from restorelab.gui.features.base import Area, Feature
from restorelab.gui.panels.params_panel import ParamForm
from restorelab.gui.runner import LatestRunner
from restorelab.gui.undo import ImageEdit
from restorelab.session import ClonePlacement
from restorelab.workspace import Workspace

Box = tuple[int, int, int, int]


def ellipse_mask(shape: tuple[int, int], x: float, y: float, w: float, h: float) -> np.ndarray:
    """Boolean mask of the axis-aligned ellipse inscribed in the box (x, y, w, h)."""
    H, W = shape
    cy, cx, ry, rx = y + h / 2, x + w / 2, max(h / 2, 0.5), max(w / 2, 0.5)
    yy = (np.arange(H, dtype=np.float32)[:, None] + 0.5 - cy) / ry
    xx = (np.arange(W, dtype=np.float32)[None, :] + 0.5 - cx) / rx
    return (yy * yy + xx * xx) <= 1.0


def _placed_box(mask_box: Box, offset: tuple[int, int], shape: tuple[int, ...], pad: int = 1) -> Box | None:
    y0, x0, y1, x1 = mask_box
    dy, dx = offset
    b = (
        max(y0 + dy - pad, 0),
        max(x0 + dx - pad, 0),
        min(y1 + dy + pad, shape[0]),
        min(x1 + dx + pad, shape[1]),
    )
    return b if b[2] > b[0] and b[3] > b[1] else None


class CloneFeature(Feature):
    """Canvas handler + state of one clone placement, and the dock that drives it."""

    key = "clone"
    title = "Seamless clone"
    area = Area.LeftDockWidgetArea
    tab_with = "mask"

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx)
        self.mode, self.solver = "import", "auto"
        self.source_kind = "mask"  # or "ellipse"
        self.source_image: np.ndarray | None = None  # None: the document itself
        self.source_name = "this image"
        self.session: Any = None
        self.offset = (0, 0)
        self.active = False
        self.placements = 0
        self._press: tuple[float, float] | None = None
        self._offset0 = (0, 0)
        self._dst: np.ndarray | None = None
        self._src_mask: np.ndarray | None = None
        self._mask_box: Box = (0, 0, 0, 0)
        self.last: tuple[tuple[int, int], np.ndarray] | None = None  # (offset, full result)
        self.runner = LatestRunner(self)
        self.runner.ready.connect(self._placed)
        self.runner.error.connect(lambda m: ctx.status(f"Clone: {m}"))
        self.roi: pg.EllipseROI | None = None
        ctx.add_tool(
            ToolSpec(
                "clone",
                "Seamless &clone",
                "C",
                "Drag the selected source; Enter commits, Esc cancels",
                lambda: self,
            )
        )
        ctx.tool_changed.connect(self._tool_changed)
        self._build()

    # -- dock ---------------------------------------------------------------------------
    def _build(self) -> None:
        w = self.widget = QWidget()
        form = QFormLayout(w)
        self.kind = QComboBox()
        self.kind.addItem("Painted mask", "mask")
        self.kind.addItem("Ellipse (drag its handles)", "ellipse")
        self.kind.currentIndexChanged.connect(lambda _: self.set_source_kind(self.kind.currentData()))
        form.addRow("Source region", self.kind)
        self.src_label = QLabel("this image")
        b_src = QPushButton("Other image…")
        b_src.clicked.connect(lambda: self.load_source())
        b_this = QPushButton("This image")
        b_this.clicked.connect(self.use_document_as_source)
        form.addRow("Source image", self.src_label)
        form.addRow(b_src, b_this)
        self.params = ParamForm(edit.OPERATIONS.get("clone", ()))
        self.params.changed.connect(self._params_changed)
        form.addRow(self.params)
        self.start = QPushButton("Pick up source  (C, then drag)")
        self.start.clicked.connect(lambda: (self.ctx.set_tool("clone"), self.begin(self.offset)))
        self.commit_button = QPushButton("Commit  (Enter)")
        self.commit_button.clicked.connect(self.commit)
        self.cancel_button = QPushButton("Cancel  (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        form.addRow(self.start)
        form.addRow(self.commit_button, self.cancel_button)
        self.state_label = QLabel()
        self.state_label.setWordWrap(True)
        form.addRow(self.state_label)
        self.a_commit = self.action("Commit clone", self.commit, menu="Run", shortcut=["Return", "Enter"])
        self._update()

    def dock(self) -> QWidget:
        return self.widget

    def actions(self) -> list[QAction]:
        return [self.a_commit]

    def _params_changed(self) -> None:
        v = self.params.values()
        if "mode" in v:
            self.set_mode(v["mode"], v.get("solver"))

    def _update(self) -> None:
        i = self.kind.findData(self.source_kind)
        if i >= 0 and i != self.kind.currentIndex():
            self.kind.blockSignals(True)
            self.kind.setCurrentIndex(i)
            self.kind.blockSignals(False)
        n = self.source_name
        self.src_label.setText(n if len(n) < 40 else "…" + n[-38:])
        self.commit_button.setEnabled(self.active)
        self.cancel_button.setEnabled(self.active)
        self.a_commit.setEnabled(self.active)
        self.state_label.setText(
            f"Placing at dy={self.offset[0]}, dx={self.offset[1]}"
            if self.active
            else "Ready: press C and drag from the source."
        )

    def _tool_changed(self, key: str) -> None:
        if key != "clone" and self.active:
            self.cancel()
        if key == "clone":
            self.ctx.raise_dock(self.key)

    # -- source -------------------------------------------------------------------------
    def set_mode(self, mode: str, solver: str | None = None) -> None:
        if mode not in edit.CLONE_MODES:
            raise ValueError(f"mode must be one of {', '.join(edit.CLONE_MODES)}")
        self.mode = mode
        if solver is not None:
            self.solver = solver
        self._drop_session()
        if self.active:
            if self.prepare():
                self._request()
            else:
                self.cancel()

    def _drop_session(self) -> None:
        self.runner.cancel(wait=5.0)  # the running placement may use the session
        self.session = None
        self.last = None

    def set_source_kind(self, kind: str) -> None:
        self.source_kind = kind
        self._drop_session()
        if kind == "ellipse":
            self._ensure_roi()
        elif self.roi is not None:
            self.roi.setVisible(False)
        self._update()

    def _ensure_roi(self) -> None:
        doc = self.doc
        if doc is None:
            return
        H, W = doc.shape[:2]
        if self.roi is None:
            self.roi = pg.EllipseROI(
                [W * 0.4, H * 0.4], [W * 0.2, H * 0.2], pen=pg.mkPen((80, 220, 255), width=2)
            )
            self.roi.setZValue(25)
            self.ctx.canvas.vb.addItem(self.roi)
            self.roi.sigRegionChangeFinished.connect(lambda *_: self._drop_session())
        self.roi.setVisible(True)

    def set_ellipse(self, x: float, y: float, w: float, h: float) -> None:
        """Place the ellipse source (image coordinates)."""
        self.set_source_kind("ellipse")
        if self.roi is not None:
            self.roi.setPos((x, y))
            self.roi.setSize((w, h))
        self._drop_session()

    def load_source(self, path: str | None = None) -> bool:
        if not path:
            path, _ = QFileDialog.getOpenFileName(None, "Source image", self.ctx.last_dir())
            if not path:
                return False

        def job() -> Any:
            from restorelab.io import load_image

            return load_image(path)
            yield

        def done(img: Any) -> None:
            self._drop_session()
            self.source_image = img
            self.source_name = str(path)
            self._update()

        return self.ctx.run("Open clone source", job, done)

    def use_document_as_source(self) -> None:
        self._drop_session()
        self.source_image = None
        self.source_name = "this image"
        self._update()

    def source_mask(self) -> np.ndarray:
        """The source region as booleans, in the source image's frame."""
        doc = self.doc
        assert doc is not None
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

    # -- placement ------------------------------------------------------------------------
    def prepare(self) -> bool:
        """Build the core's CloneSession (source, region, mode)."""
        doc = self.doc
        if doc is None:
            return False
        try:
            mask = self.source_mask()
            if not mask.any():
                raise ValueError("the source region is empty: paint a mask (B) or choose the ellipse")
            src = (self.source_image if self.source_image is not None else doc.image).copy()
            self.session = edit.prepare(src, mask, self.mode, self.solver)
            self._src_mask = mask
            ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
            self._mask_box = (int(ys[0]), int(xs[0]), int(ys[-1]) + 1, int(xs[-1]) + 1)
        except Exception as e:  # noqa: BLE001 - shown, never a crash
            import traceback

            self.ctx.error("Cannot start the clone", str(e), traceback.format_exc())
            self.session = None
            return False
        return True

    def begin(self, offset: tuple[int, int] = (0, 0)) -> bool:
        """Start a placement at ``offset`` = (dy, dx)."""
        doc = self.doc
        if doc is None or self.ctx.busy:
            return False
        if self.session is None and not self.prepare():
            return False
        self._dst = doc.snapshot()
        self.offset = (int(offset[0]), int(offset[1]))
        self.active = True
        self.last = None
        if self.roi is not None:
            self.roi.setVisible(False)
        self._request()
        self._update()
        return True

    def move_to(self, offset: tuple[int, int]) -> None:
        self.offset = (int(offset[0]), int(offset[1]))
        self._request()
        self._update()

    def _request(self) -> None:
        if not self.active or self.session is None or self._dst is None:
            return
        session, dst, off, box = self.session, self._dst, self.offset, self._mask_box

        def compute(token: Any) -> Any:
            out = session.place(dst, offset=off)
            b = _placed_box(box, off, dst.shape)
            crop = None if b is None else np.array(out[b[0] : b[2], b[1] : b[3]])
            return out, crop, b

        self.runner.request(compute, off)

    def _placed(self, result: Any, tag: Any) -> None:
        if not self.active:
            return
        out, crop, b = result
        self.last = (tag, out)
        self.placements += 1
        if b is not None:
            self.ctx.preview(crop, (b[0], b[1]), owner=self)
        self.ctx.status(f"Clone at offset dy={tag[0]}, dx={tag[1]} — Enter commits, Esc cancels", 3000)

    def commit(self) -> bool:
        """Apply the clone at the current offset as one undoable step (a job)."""
        doc = self.doc
        if not self.active or doc is None or self.session is None or self._dst is None:
            return False
        session, dst, off, runner = self.session, self._dst, self.offset, self.runner
        src_mask, mode, solver, name = self._src_mask, self.mode, self.solver, self.source_name

        def job() -> Any:
            runner.cancel()  # a placement still running finishes first: the session serialises them
            return ImageEdit(dst, session.place(dst, offset=off, reuse=True))
            yield

        def done(e: ImageEdit) -> None:
            if self.doc is not doc:
                return
            doc.ws.clones.append(
                ClonePlacement(
                    source_id=name,
                    mask=np.asarray(src_mask),
                    offset=off,
                    mode=mode if mode in ("import", "mixed", "average") else "import",
                    source_path=None if name == "this image" else name,
                    params={"solver": solver},
                )
            )
            doc.apply_edit(e, f"Seamless clone ({mode})")
            self.ctx.status("Clone committed.", 3000)

        def end(outcome: str) -> None:
            self._finish()

        self.active = False
        self._update()
        return self.ctx.run("Seamless clone", job, done, on_end=end)

    def _finish(self) -> None:
        """After a commit or cancel: the next drag starts from the source again."""
        self.active = False
        self.offset = (0, 0)
        self.last = None
        self._dst = None
        if self.source_image is None:
            self.session = None  # the image changed
        if self.roi is not None and self.source_kind == "ellipse":
            self.roi.setVisible(True)
        self._update()

    def cancel(self) -> None:
        if not self.active:
            return
        self.runner.cancel()
        self.ctx.clear_preview(self)
        self._finish()
        self.ctx.status("Clone cancelled.", 2000)

    def document_changed(self, doc: Document | None) -> None:
        self.runner.cancel(wait=5.0)
        self.active = False
        self.session = None
        self._finish()
        if self.roi is not None:
            self.roi.setVisible(False)

    def shutdown(self) -> None:
        self.runner.stop()

    def state(self, ws: Workspace) -> None:
        ws.extra["clone"] = {"mode": self.mode, "solver": self.solver, "source_kind": self.source_kind}

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
