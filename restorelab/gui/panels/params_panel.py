"""Parameter forms generated from the core's declarations (one ``Param`` → one widget).

- float with a range: superqt ``QLabeledDoubleSlider``; ``log=True``: a slider over
  log10(value) with an editable value field; ``sigma_like``: shown ×255;
- int: ``QLabeledSlider``; bool: check box; str with choices: combo box;
- no range: a spin box / line edit;
- declarations with a ``group`` go into a collapsible section (superqt ``QCollapsible``);
- each row has a reset-to-default button, the tooltip is the declaration's help text;
- a σ-dependent default follows σ until the user touches the widget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible, QDoubleSlider, QLabeledDoubleSlider, QLabeledSlider

from restorelab.params import Param


def _fmt(v: float) -> str:
    return f"{v:.4g}"


class LogSlider(QWidget):
    """A slider over log10(value) with an editable value field (e.g. λ, step sizes)."""

    valueChanged = Signal(float)  # noqa: N815

    def __init__(self, lo: float, hi: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lo, self.hi = lo, hi
        self.slider = QDoubleSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(math.log10(lo), math.log10(hi))
        self.edit = QLineEdit()
        self.edit.setValidator(QDoubleValidator(lo, hi, 8))
        self.edit.setFixedWidth(70)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.edit)
        self.slider.valueChanged.connect(self._slid)
        self.edit.editingFinished.connect(self._edited)

    def value(self) -> float:
        return float(min(max(10 ** self.slider.value(), self.lo), self.hi))

    def setValue(self, v: float) -> None:  # noqa: N802
        v = float(min(max(v, self.lo), self.hi))
        self.slider.setValue(math.log10(v))
        self.edit.setText(_fmt(v))

    def _slid(self, _: float) -> None:
        self.edit.setText(_fmt(self.value()))
        self.valueChanged.emit(self.value())

    def _edited(self) -> None:
        try:
            v = float(self.edit.text())
        except ValueError:
            return
        self.setValue(v)
        self.valueChanged.emit(self.value())


class ParamRow:
    """One declaration's widget, with get/set in the declaration's units."""

    def __init__(self, p: Param, on_change: Callable[[], None]) -> None:
        self.p = p
        self.touched = False
        self._setting = False
        self.scale = 255.0 if p.sigma_like else 1.0
        lo, hi = p.lo, p.hi
        w: QWidget
        if p.kind is bool:
            w = QCheckBox()
            w.toggled.connect(self._changed)
        elif p.kind is str:
            if p.choices:
                w = QComboBox()
                w.addItems(list(p.choices))
                w.currentTextChanged.connect(self._changed)
            else:
                w = QLineEdit()
                w.editingFinished.connect(self._changed)
        elif p.kind is float and p.log and lo is not None and hi is not None:
            w = LogSlider(lo * self.scale, hi * self.scale)
            w.valueChanged.connect(self._changed)
        elif p.kind is float and lo is not None and hi is not None:
            w = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
            w.setRange(lo * self.scale, hi * self.scale)
            span = (hi - lo) * self.scale
            w.setDecimals(max(0, min(6, 3 - int(math.floor(math.log10(span))) if span > 0 else 2)))
            w.valueChanged.connect(self._changed)
        elif p.kind is int and lo is not None and hi is not None and hi - lo <= 10000:
            w = QLabeledSlider(Qt.Orientation.Horizontal)
            w.setRange(int(lo), int(hi))
            w.valueChanged.connect(self._changed)
        elif p.kind is int:
            w = QSpinBox()
            w.setRange(int(lo) if lo is not None else -(2**31), int(hi) if hi is not None else 2**31 - 1)
            w.valueChanged.connect(self._changed)
        else:
            w = QDoubleSpinBox()
            w.setDecimals(6)
            w.setRange(
                lo * self.scale if lo is not None else -1e12, hi * self.scale if hi is not None else 1e12
            )
            w.valueChanged.connect(self._changed)
        self.widget = w
        self._on_change = on_change
        tip = p.help + (f" [{p.unit}]" if p.unit else "") + ("  (shown ×255)" if p.sigma_like else "")
        w.setToolTip(tip)
        self.reset_button = QToolButton()
        self.reset_button.setText("↺")
        self.reset_button.setToolTip(f"Reset {p.display_label} to its default")
        self.reset_button.setAutoRaise(True)

    def _changed(self, *_: Any) -> None:
        if self._setting:
            return
        self.touched = True
        self._on_change()

    def get(self) -> Any:
        w, p = self.widget, self.p
        if isinstance(w, QCheckBox):
            v: Any = w.isChecked()
        elif isinstance(w, QComboBox):
            v = w.currentText()
        elif isinstance(w, QLineEdit):
            v = w.text()
        else:
            v = w.value()
            if p.kind is float:
                v = float(v) / self.scale
        return p.coerce(v, clamp=True) if p.kind in (int, float) else p.coerce(v)

    def set(self, v: Any) -> None:
        self._setting = True
        try:
            w = self.widget
            if isinstance(w, QCheckBox):
                w.setChecked(bool(v))
            elif isinstance(w, QComboBox):
                w.setCurrentText(str(v))
            elif isinstance(w, QLineEdit):
                w.setText(str(v))
            elif isinstance(w, QLabeledSlider | QSpinBox) and not isinstance(w, QLabeledDoubleSlider):
                w.setValue(int(v))
            else:
                w.setValue(float(v) * self.scale)
        finally:
            self._setting = False

    def reset(self, sigma: float | None) -> None:
        self.set(self.p.default_for(sigma))
        self.touched = False


class ParamForm(QWidget):
    """All widgets of one parameter tuple. ``changed`` is emitted on any user edit."""

    changed = Signal()

    def __init__(
        self, params: Sequence[Param], sigma: float | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.params = tuple(params)
        self.sigma = sigma
        self.rows: dict[str, ParamRow] = {}
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        groups: dict[str, list[Param]] = {}
        for p in self.params:
            groups.setdefault(p.group or "", []).append(p)
        for gname, plist in groups.items():
            form = QFormLayout()
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            for p in plist:
                row = ParamRow(p, self.changed.emit)
                row.reset(sigma)
                row.reset_button.clicked.connect(
                    lambda _=False, r=row: (r.reset(self.sigma), self.changed.emit())
                )
                box = QWidget()
                hl = QHBoxLayout(box)
                hl.setContentsMargins(0, 0, 0, 0)
                hl.addWidget(row.widget, 1)
                hl.addWidget(row.reset_button)
                label = QLabel(
                    p.display_label + (f" ({p.unit})" if p.unit else "") + (" ×255" if p.sigma_like else "")
                )
                label.setToolTip(row.widget.toolTip())
                form.addRow(label, box)
                self.rows[p.name] = row
            if gname:
                coll = QCollapsible(gname.capitalize())
                inner = QWidget()
                inner.setLayout(form)
                coll.addWidget(inner)
                if len(groups) <= 2:
                    coll.expand(animate=False)
                outer.addWidget(coll)
            else:
                outer.addLayout(form)
        if self.params:
            reset_all = QPushButton("Reset all to defaults")
            reset_all.clicked.connect(self.reset_all)
            outer.addWidget(reset_all)
        else:
            outer.addWidget(QLabel("(no parameters)"))

    def values(self) -> dict[str, Any]:
        """Current values of every declaration, coerced to its kind."""
        return {name: row.get() for name, row in self.rows.items()}

    def set_values(self, values: dict[str, Any]) -> None:
        for k, v in values.items():
            if k in self.rows:
                self.rows[k].set(v)
                self.rows[k].touched = True

    def set_sigma(self, sigma: float) -> None:
        """σ changed: σ-dependent defaults follow unless touched."""
        self.sigma = sigma
        for row in self.rows.values():
            if row.p.depends_on_sigma and not row.touched:
                row.reset(sigma)

    def reset_all(self) -> None:
        for row in self.rows.values():
            row.reset(self.sigma)
        self.changed.emit()


class Debouncer(QTimer):
    """Single-shot timer restarted by each ``poke`` (recompute after the slider rests)."""

    def __init__(self, ms: int, fn: Callable[[], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSingleShot(True)
        self.setInterval(ms)
        self.timeout.connect(fn)

    def poke(self) -> None:
        self.start()
