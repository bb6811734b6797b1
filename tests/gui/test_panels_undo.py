"""Parameter forms generated from declarations; undo deltas with bounded memory; brush."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from restorelab.params import Param


def test_param_form_one_widget_per_declaration(qtbot: Any) -> None:
    from PySide6.QtWidgets import QCheckBox, QComboBox, QSpinBox
    from superqt import QLabeledDoubleSlider, QLabeledSlider

    from restorelab.gui.panels.params_panel import LogSlider, ParamForm

    params = (
        Param("lam", float, lambda s: 0.5 * s, lo=1e-4, hi=1.0, log=True, help="weight λ"),
        Param("thr", float, 10 / 255, lo=0.0, hi=0.5, sigma_like=True, help="threshold"),
        Param("iters", int, 20, lo=1, hi=500, group="advanced", help="iterations"),
        Param("seed", int, 0, lo=0, hi=2**31 - 1, group="advanced", help="seed"),
        Param("fast", bool, True, help="fast path"),
        Param("rule", str, "soft", choices=("soft", "hard"), help="shrinkage rule"),
    )
    form = ParamForm(params, sigma=20 / 255)
    qtbot.addWidget(form)
    w = {n: r.widget for n, r in form.rows.items()}
    assert isinstance(w["lam"], LogSlider)
    assert isinstance(w["thr"], QLabeledDoubleSlider)
    assert isinstance(w["iters"], QLabeledSlider)
    assert isinstance(w["seed"], QSpinBox)  # a huge range: a spin box, not a slider
    assert isinstance(w["fast"], QCheckBox)
    assert isinstance(w["rule"], QComboBox)
    assert w["lam"].toolTip().startswith("weight λ")
    v = form.values()
    assert v["lam"] == pytest.approx(0.5 * 20 / 255, rel=1e-3)
    assert v["thr"] == pytest.approx(10 / 255, abs=1e-3)
    assert w["thr"].value() == pytest.approx(10, abs=0.01)  # σ-like values are shown ×255
    # the σ-dependent default follows σ until the user touches the widget
    form.set_sigma(40 / 255)
    assert form.values()["lam"] == pytest.approx(0.5 * 40 / 255, rel=1e-3)
    w["lam"].setValue(0.3)
    w["lam"]._slid(0)  # as a user drag does
    assert form.rows["lam"].touched
    form.set_sigma(10 / 255)
    assert form.values()["lam"] == pytest.approx(0.3, rel=1e-3)
    # reset to defaults
    w["rule"].setCurrentText("hard")
    w["iters"].setValue(300)
    form.reset_all()
    v = form.values()
    assert v["rule"] == "soft" and v["iters"] == 20
    assert v["lam"] == pytest.approx(0.5 * 10 / 255, rel=1e-3)


def test_denoise_panel_generated_from_registry(win: Any) -> None:
    from restorelab import denoise

    panel = win.feature("denoise").panel
    assert panel.method.count() == len(denoise.names())
    panel.select("_test_slow")
    assert set(panel.form.rows) == {"steps", "delay"}
    assert panel.values() == {"steps": 5, "delay": 0.0}


def test_undo_store_spills_beyond_budget(tmp_path: Any) -> None:
    from restorelab.gui.undo import DeltaStore

    st = DeltaStore(budget=3 * 64 * 64 * 4)
    arrays = [np.full((64, 64), i, np.float32) for i in range(8)]
    keys = [st.put(a) for a in arrays]
    assert st.bytes_in_memory <= st.budget
    assert st.spilled == 5
    for k, a in zip(keys, arrays, strict=True):
        np.testing.assert_array_equal(st.get(k), a)
    st.drop(keys[0])
    assert st.spilled == 4


def test_stroke_undo_stores_only_touched_tiles(qtbot: Any) -> None:
    from restorelab.gui.document import Document
    from restorelab.gui.mask import Stroke

    doc = Document(np.zeros((2000, 3000), np.float32))
    s = Stroke(doc, 10, 0.5, False)
    for x in range(100, 400, 5):
        s.add(x, 100)
    cmd = s.finish()
    assert cmd is not None
    assert cmd.nbytes <= 2 * 2 * 256 * 256  # two tiles, before and after, uint8
    doc.push(cmd)
    painted = doc.mask.copy()
    doc.undo.undo()
    assert doc.mask.sum() == 0
    doc.undo.redo()
    np.testing.assert_array_equal(doc.mask, painted)


def test_filter_undo_stores_changed_box_only(qtbot: Any) -> None:
    from restorelab.gui.document import Document

    img = np.zeros((1000, 1000, 3), np.float32)
    doc = Document(img)
    new = img.copy()
    new[100:150, 200:260] = 0.5
    doc.apply_image(new, "local edit")
    cmd = doc.undo.command(0)
    assert cmd.nbytes == 2 * 50 * 60 * 3 * 4
    doc.undo.undo()
    assert doc.image.sum() == 0


def test_brush_stamp_soft_edge() -> None:
    from restorelab.gui.mask import brush_stamp, stamp

    hard, soft = brush_stamp(10, 1.0), brush_stamp(10, 0.0)
    assert hard.shape == (21, 21) and hard[10, 10] == 255 and hard[10, 0] < 128
    assert (hard >= soft).all() and soft[10, 5] < 255
    m = np.zeros((50, 50), np.uint8)
    r = stamp(m, 2, 2, 5, 1.0)
    assert r == (0, 0, 8, 8) and m[2, 2] == 255
    stamp(m, 2, 2, 5, 1.0, erase=True)
    assert m.max() == 0
    assert stamp(m, -100, -100, 5, 1.0) is None


def test_signal_emit_does_not_exhaust_true() -> None:
    """PySide6 6.12.0's emit() drops a reference to True on Python 3.11; the GUI's guard
    keeps the interpreter alive through any number of emissions."""
    import sys

    from PySide6.QtCore import QObject, Signal

    import restorelab.gui  # noqa: F401 - applies the guard

    class Emitter(QObject):
        s = Signal()

    o = Emitter()
    for _ in range(5000):
        o.s.emit()
    assert sys.getrefcount(True) > 10_000


def test_undo_store_spills_without_blocking_the_caller(monkeypatch: Any) -> None:
    """A spill writes on the store's own thread: ``put`` returns before the file is written
    (a 24 MP filter result spilled 110 ms on the GUI thread), and every array stays readable
    while, and after, it is written."""
    import threading

    from restorelab.gui import undo

    release = threading.Event()
    real_save = np.save
    writers: list[str] = []

    def slow_save(path: Any, a: Any) -> None:
        writers.append(threading.current_thread().name)
        release.wait(10)
        real_save(path, a)

    monkeypatch.setattr(undo.np, "save", slow_save)
    st = undo.DeltaStore(budget=2 * 64 * 64 * 4)
    arrays = [np.full((64, 64), i, np.float32) for i in range(4)]
    keys = [st.put(a) for a in arrays]  # would block on slow_save if it ran here
    assert st.bytes_in_memory <= st.budget
    for k, a in zip(keys, arrays, strict=True):  # readable while being written
        np.testing.assert_array_equal(st.get(k), a)
    release.set()
    st.flush()
    assert st.spilled == 2 and threading.main_thread().name not in writers
    for k, a in zip(keys, arrays, strict=True):
        np.testing.assert_array_equal(st.get(k), a)
    st.drop(keys[0])
    assert st.spilled == 1


def test_undo_of_spilled_edits_reads_no_file_on_the_gui_thread(qtbot: Any, monkeypatch: Any) -> None:
    """The deltas of the next undo and redo are read back on the store's thread ahead of
    time: undoing (and redoing) edits spilled to disk never calls ``np.load`` on the GUI
    thread, and every step restores the exact pixels."""
    import threading

    from restorelab.gui import undo
    from restorelab.gui.document import Document

    readers: list[str] = []
    real_load = np.load

    def spy_load(*a: Any, **k: Any) -> Any:
        readers.append(threading.current_thread().name)
        return real_load(*a, **k)

    monkeypatch.setattr(undo.np, "load", spy_load)
    rng = np.random.default_rng(0)
    doc = Document(rng.random((64, 64)).astype(np.float32), memory_budget=2 * 64 * 64 * 4)
    states = [doc.image.copy()]
    for _ in range(6):
        doc.apply_image(rng.random((64, 64)).astype(np.float32), "edit")
        states.append(doc.image.copy())
    doc.store.flush()
    assert doc.store.spilled >= 6
    for i in range(6, 0, -1):
        doc.store.flush()  # the prefetch started by the last index change has finished
        doc.undo.undo()
        np.testing.assert_array_equal(doc.image, states[i - 1])
    for i in range(1, 7):
        doc.store.flush()
        doc.undo.redo()
        np.testing.assert_array_equal(doc.image, states[i])
    assert readers, "the edits were not spilled: the test does not exercise a read"
    assert threading.main_thread().name not in readers
