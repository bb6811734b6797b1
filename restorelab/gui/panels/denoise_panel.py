"""The Denoise dock: method chooser, σ (×255), generated parameter form, live preview."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from restorelab import denoise
from restorelab.gui.panels.params_panel import Debouncer, ParamForm


class DenoisePanel(QWidget):
    """Emits ``run_requested`` (Apply) and ``preview_requested`` (debounced, live)."""

    run_requested = Signal()
    preview_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        self.method = QComboBox()
        self.method.setToolTip("Denoising method (from the core's registry)")
        lay.addWidget(QLabel("Method"))
        lay.addWidget(self.method)
        self.sigma = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.sigma.setRange(0.0, 100.0)
        self.sigma.setDecimals(1)
        self.sigma.setValue(25.0)
        self.sigma.setToolTip("Noise level σ of the image, on the 0–255 scale")
        lay.addWidget(QLabel("Noise σ (×255)"))
        lay.addWidget(self.sigma)
        self.citation = QLabel()
        self.citation.setWordWrap(True)
        self.citation.setStyleSheet("color: gray; font-size: 10px")
        lay.addWidget(self.citation)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        lay.addWidget(self.scroll, 1)
        self.live = QCheckBox("Live preview on the visible crop")
        self.live.setToolTip(
            "Recompute a ≤256² crop of the view shortly after each change (fast methods only)"
        )
        self.live.setChecked(True)
        lay.addWidget(self.live)
        self.in_mask = QCheckBox("Only inside the painted mask")
        lay.addWidget(self.in_mask)
        row = QHBoxLayout()
        self.run_button = QPushButton("Apply  (Ctrl+R)")
        self.run_button.setToolTip("Denoise the whole image in the background; Esc cancels")
        row.addWidget(self.run_button)
        lay.addLayout(row)
        self.form: ParamForm | None = None
        self._debounce = Debouncer(250, self.preview_requested.emit, self)
        self.run_button.clicked.connect(self.run_requested.emit)
        self.method.currentIndexChanged.connect(self._method_changed)
        self.sigma.valueChanged.connect(self._sigma_changed)
        self.live.toggled.connect(lambda _: self._debounce.poke())
        self.refresh_methods()

    #: default method order when the user has chosen none yet
    PREFERRED = ("bfcnn", "nlm")

    def refresh_methods(self) -> None:
        """Fill the chooser from ``restorelab.denoise.names()`` (disabled when empty)."""
        current = self.method_name()
        self.method.blockSignals(True)
        self.method.clear()
        for n in denoise.names():
            self.method.addItem(denoise.get_class(n).title or n, n)
        self.method.blockSignals(False)
        # keep the user's choice; else start on the best default: the learned blind model,
        # then non-local means (the best classical method of BENCHMARKS.md)
        for name in (current, *self.PREFERRED):
            i = self.method.findData(name) if name else -1
            if i >= 0:
                self.method.setCurrentIndex(i)
                break
        self._method_changed()

    def method_name(self) -> str | None:
        return self.method.currentData()

    def method_class(self) -> Any:
        n = self.method_name()
        if n is None:
            return None
        return denoise.get_class(n)

    def select(self, name: str) -> None:
        i = self.method.findData(name)
        if i < 0:
            raise KeyError(name)
        self.method.setCurrentIndex(i)

    def sigma_value(self) -> float:
        """σ on the [0, 1] scale."""
        return float(self.sigma.value()) / 255.0

    def values(self) -> dict[str, Any]:
        return self.form.values() if self.form is not None else {}

    def _method_changed(self, *_: Any) -> None:
        cls = self.method_class()
        params = getattr(cls, "params", ()) if cls is not None else ()
        self.form = ParamForm(params, self.sigma_value())
        self.form.changed.connect(self._debounce.poke)
        self.scroll.setWidget(self.form)
        self.citation.setText(getattr(cls, "citation", "") if cls is not None else "")
        self._debounce.poke()

    def _sigma_changed(self, *_: Any) -> None:
        if self.form is not None:
            self.form.set_sigma(self.sigma_value())
        self._debounce.poke()
