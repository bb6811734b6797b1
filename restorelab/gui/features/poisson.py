"""Poisson editing operations: texture flattening, illumination, colour, contrast, tiling.

Parameters are generated from ``restorelab.edit.OPERATIONS``; an operation is applied
inside the painted mask (or to the whole image) as a job.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from restorelab import edit
from restorelab.gui.context import AppContext
from restorelab.gui.features.base import Area, Feature
from restorelab.gui.panels.params_panel import ParamForm
from restorelab.gui.undo import edit_job
from restorelab.session import MethodChoice
from restorelab.workspace import Workspace

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


class PoissonFeature(Feature):
    key = "poisson"
    title = "Poisson edit"
    area = Area.LeftDockWidgetArea
    tab_with = "clone"

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx)
        w = self.widget = QWidget()
        lay = QVBoxLayout(w)
        self.op = QComboBox()
        for name in self.operations():
            self.op.addItem(OP_TITLES.get(name, name), name)
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
        self._op_changed()

    @staticmethod
    def operations() -> dict[str, Any]:
        return {k: v for k, v in edit.OPERATIONS.items() if k != "clone"}

    def dock(self) -> QWidget:
        return self.widget

    def actions(self) -> list[QAction]:
        return [
            self.action(OP_TITLES.get(n, n) + "…", lambda _=False, n=n: self.show_op(n), menu="Tools/Poisson")
            for n in self.operations()
        ]

    def show_op(self, name: str) -> None:
        self.op.setCurrentIndex(self.op.findData(name))
        self.ctx.raise_dock(self.key)

    def _op_changed(self, *_: Any) -> None:
        name = self.op.currentData()
        self.form = ParamForm(self.operations().get(name, ()) if name else ())
        self.scroll.setWidget(self.form)
        self.note.setText(OP_NOTES.get(name, "") if name else "")

    def run(self) -> bool:
        """Apply the chosen operation (``restorelab.edit.job``) inside the painted mask when
        there is one, else on the whole image."""
        doc, name = self.doc, self.op.currentData()
        if doc is None or not name:
            return False
        values = self.form.values() if self.form else {}
        img = doc.snapshot()
        mask = doc.mask_bool() if name != "tile" and doc.has_mask() else None
        title = OP_TITLES.get(name, name)

        def done(e: Any) -> None:
            if self.doc is doc:
                doc.ws.history.append(MethodChoice("poisson", name, dict(values)))
                doc.apply_edit(e, title + (" (in mask)" if mask is not None else ""))

        return self.ctx.run(title, lambda: edit_job(edit.job(name, img, mask, **values), img), done)

    def state(self, ws: Workspace) -> None:
        name = self.op.currentData()
        if name and self.form is not None:
            ws.methods[self.key] = MethodChoice(self.key, name, dict(self.form.values()))

    def restore(self, ws: Workspace) -> list[str]:
        m = self.method(ws)
        if m is None:
            return []
        i = self.op.findData(m.name)
        if i < 0:
            return [f"Poisson operation {m.name!r} is not available"]
        self.op.setCurrentIndex(i)
        if self.form is not None:
            self.form.set_values(dict(m.params))
        return []
