"""Session files, autosave recovery and the CUDA out-of-memory fallback, through the window."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from restorelab import denoise
from restorelab.denoise.base import Denoiser
from restorelab.params import Param
from restorelab.session import ClonePlacement, MethodChoice


class FirstCallOOMDenoiser(Denoiser):
    """Test double: ``torch.cuda.OutOfMemoryError`` on its first call, then x ← x·scale."""

    name = "_test_oom_once"
    title = "OOM once test denoiser"
    params = (Param("scale", float, 0.25, lo=0.0, hi=1.0, help="factor"),)
    calls: list[str] = []

    def _denoise(self, x: np.ndarray, sigma: float, p: Any) -> np.ndarray:
        type(self).calls.append(str(self.device))
        if len(type(self).calls) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB (simulated)")
        return (p["scale"] * x).astype(np.float32)


def _edit(win: Any) -> None:
    """Some work: a mask, a denoise result in the history, a chosen method and parameters."""
    doc = win.doc
    m = np.zeros(doc.mask.shape, np.uint8)
    m[10:30, 40:70] = 255
    m[50:52, 5:9] = 128
    doc.apply_mask(m, "paint")
    doc.apply_image(np.clip(doc.image * 0.8 + 0.05, 0, 1), "an edit")
    doc.ws.clones = [ClonePlacement("small.png", m[:40, :40] > 0, (3, -4), "mixed", params={"solver": "cg"})]
    doc.ws.history = [MethodChoice("denoise", "_test_fast", {"gamma": 1.5}, 0.1)]
    win.feature("denoise").panel.select("_test_fast")
    win.feature("denoise").panel.sigma.setValue(37.0)
    win.feature("denoise").panel.form.set_values({"gamma": 3.25})
    win.feature("denoise").panel.in_mask.setChecked(True)


def test_session_save_and_reopen(win: Any, tmp_path: Path, dialog_log: Any, wait_idle: Any) -> None:
    _edit(win)
    doc = win.doc
    image, mask = doc.image.copy(), doc.mask.copy()
    p = tmp_path / "work.rlsession"
    assert win.save_session_to(p)
    assert p.is_file() and len(list(tmp_path.glob("work.rlsession.*.npz"))) == 1
    # change everything, then reopen
    win.feature("denoise").panel.select("_test_slow")
    win.feature("denoise").panel.sigma.setValue(5.0)
    win.feature("denoise").panel.in_mask.setChecked(False)
    doc.undo.setClean()
    assert win.open_session(p)
    wait_idle(win)
    new = win.doc
    assert new is not doc
    np.testing.assert_array_equal(new.image, image)
    np.testing.assert_array_equal(new.mask, mask)
    assert win.feature("denoise").panel.method_name() == "_test_fast"
    assert abs(win.feature("denoise").panel.sigma.value() - 37.0) < 1e-6
    assert abs(win.feature("denoise").panel.values()["gamma"] - 3.25) < 1e-6
    assert win.feature("denoise").panel.in_mask.isChecked()
    c = new.ws.clones[0]
    assert c.offset == (3, -4) and c.mode == "mixed" and c.params["solver"] == "cg"
    np.testing.assert_array_equal(c.mask, mask[:40, :40] > 0)
    assert new.ws.history[-1].params == {"gamma": 1.5}
    assert not new.dirty and not any(k == "box" for k, *_ in dialog_log)
    # the canvas shows the session's pixels
    assert win.canvas.image is new.image


def test_session_keeps_sampler_result(win: Any, tmp_path: Path, wait_idle: Any) -> None:
    from restorelab.gui.features.sampler import as_sampler_result
    from restorelab.prior.sampler import SampleResult

    rng = np.random.default_rng(0)
    samples = [rng.random((8, 8), dtype=np.float32) for _ in range(3)]
    res = SampleResult(samples=samples, mean=np.mean(samples, 0), std=np.std(samples, 0, ddof=1),
                       log=[(1, 0.9, 0.01), (2, 0.5, 0.02)], sigma_log=np.zeros((2, 3)), iterations=2,
                       converged=True, message="", params={"seed": 7})
    win.doc.ws.sampler = as_sampler_result(res, {"task": "sample", "denoiser": "tv", "params": {"seed": 7}})
    p = tmp_path / "s.rlsession"
    assert win.save_session_to(p)
    assert win.open_session(p)
    wait_idle(win)
    r = win.doc.ws.sampler
    np.testing.assert_array_equal(r.samples, np.stack(samples))
    np.testing.assert_array_equal(r.std, res.std)
    assert r.log == [(1, 0.9, 0.01), (2, 0.5, 0.02)] and r.seed == 7 and r.method == "sample"
    np.testing.assert_array_equal(r.sigma_log, np.zeros((2, 3)))
    # the sampler view shows it again: σ_t curve, samples, mean and uncertainty map
    sv = win.feature("sampler")
    x, y = sv.sigma_curve.getData()
    assert list(x) == [1.0, 2.0]
    np.testing.assert_allclose(10 ** np.asarray(y), [0.9, 0.5])  # the plot is log-scaled
    assert sv.show_what.count() == 5
    sv.show_what.setCurrentIndex(4)
    np.testing.assert_allclose(sv.shown_image(), res.std / res.std.max(), rtol=1e-6)
    # saving again keeps it
    p2 = tmp_path / "s2.rlsession"
    assert win.save_session_to(p2) and win.open_session(p2)
    wait_idle(win)
    assert win.doc.ws.sampler.log == [(1, 0.9, 0.01), (2, 0.5, 0.02)]


@pytest.mark.parametrize("damage", ["json", "newer", "sidecar"])
def test_damaged_session_gives_error_dialog(
    win: Any, tmp_path: Path, dialog_log: Any, damage: str, wait_idle: Any
) -> None:
    _edit(win)
    p = tmp_path / "bad.rlsession"
    assert win.save_session_to(p)
    if damage == "json":
        p.write_text(p.read_text()[:-40])
    elif damage == "newer":
        doc = json.loads(p.read_text())
        doc["version"] = 99
        p.write_text(json.dumps(doc))
    else:
        side = next(tmp_path.glob("bad.rlsession.*.npz"))
        b = bytearray(side.read_bytes())
        b[len(b) // 2] ^= 0xFF
        side.write_bytes(bytes(b))
    doc = win.doc
    image, mask = doc.image.copy(), doc.mask.copy()
    doc.undo.setClean()
    dialog_log.clear()
    win.open_session(p)
    wait_idle(win)
    boxes = [x for x in dialog_log if x[0] == "box"]
    assert len(boxes) == 1 and boxes[0][1] == "Cannot open the session"
    expect = {"json": "damaged", "newer": "newer", "sidecar": "corrupt"}[damage]
    assert expect in boxes[0][2]
    assert win.doc is doc
    np.testing.assert_array_equal(doc.image, image)
    np.testing.assert_array_equal(doc.mask, mask)


@pytest.mark.parametrize(
    "kind, params, needle",
    [
        ("denoise", {"lam": "abc"}, "'lam' expects float"),
        ("denoise", {"max_iter": 1e14}, "max_iter = 1e+14 is out of range"),
        ("sampler", {"seed": 10**40}, "is out of range"),
    ],
)
def test_bad_method_parameters_are_refused_before_the_document_is_replaced(
    win: Any, tmp_path: Path, dialog_log: Any, wait_idle: Any, kind: str, params: dict, needle: str
) -> None:
    _edit(win)
    p = tmp_path / "params.rlsession"
    assert win.save_session_to(p)
    doc_json = json.loads(p.read_text())
    name = "tv" if kind == "denoise" else "sample"
    doc_json["methods"] = [{"kind": kind, "name": name, "params": params, "sigma": None, "seed": None}]
    p.write_text(json.dumps(doc_json))
    win.feature("denoise").panel.select("_test_slow")
    doc = win.doc
    image, mask = doc.image.copy(), doc.mask.copy()
    doc.undo.setClean()
    dialog_log.clear()
    win.open_session(p)
    wait_idle(win)
    boxes = [x for x in dialog_log if x[0] == "box"]
    assert len(boxes) == 1 and boxes[0][1] == "Cannot open the session" and needle in boxes[0][2]
    assert win.doc is doc
    np.testing.assert_array_equal(doc.image, image)
    np.testing.assert_array_equal(doc.mask, mask)
    assert win.feature("denoise").panel.method_name() == "_test_slow"  # no panel half-restored


def test_autosave_recovery_after_crash(
    qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dialog_log: Any, sample_png: str
) -> None:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QMessageBox

    from restorelab.gui.main_window import MainWindow
    from restorelab.session import save_session

    monkeypatch.delenv("RESTORELAB_NO_AUTOSAVE", raising=False)
    auto = tmp_path / "autosave"
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)

    # a first run edits, autosaves (after a job / on the timer), then "crashes"
    w1 = MainWindow(settings, autosave_dir=auto)
    qtbot.addWidget(w1)
    w1._recovery_checked = True
    assert w1.open_path(sample_png)
    qtbot.waitUntil(lambda: w1.doc is not None and not w1.ctx.busy, timeout=10000)
    _edit(w1)
    w1.autosave_if_dirty()
    w1.wait_autosave()
    assert len(list(auto.glob("autosave-*.rlsession"))) == 1
    edited, mask = w1.doc.image.copy(), w1.doc.mask.copy()
    # the crashed process's file: same content, named after a pid that no longer runs
    dead = auto / f"autosave-999999999-{w1.doc.ws.session_id}.rlsession"
    save_session(dead, w1.collect().to_session())
    w1.autosaver.clear()  # w1's own file goes (it is alive); the dead one stays
    w1.doc.undo.setClean()
    w1.shutdown()
    assert dead.is_file()

    # the next start offers recovery; the user picks Restore
    def answer_restore(box: QMessageBox) -> int:
        dialog_log.append(("box", box.windowTitle(), box.text(), ""))
        return int(QMessageBox.StandardButton.Yes.value)

    monkeypatch.setattr(QMessageBox, "exec", answer_restore)
    w2 = MainWindow(settings, autosave_dir=auto)
    qtbot.addWidget(w2)
    assert w2.offer_recovery()
    qtbot.waitUntil(lambda: w2.doc is not None and not w2.ctx.busy, timeout=10000)
    assert any(t == "Recover unsaved work?" for _k, t, *_ in dialog_log)
    np.testing.assert_array_equal(w2.doc.image, edited)
    np.testing.assert_array_equal(w2.doc.mask, mask)
    assert w2.doc.dirty  # recovered work is not saved anywhere yet
    assert not dead.exists()  # taken over by this run's autosave
    assert len(list(auto.glob("autosave-*.rlsession"))) == 1
    assert not w2.offer_recovery()  # offered once
    # autosave is written by a background thread from a snapshot (the GUI thread copies nothing)
    snap = w2.doc.image
    w2.autosave(force=True)
    from restorelab.gui.undo import PatchCommand

    patch = np.zeros((4, 4, 3), np.float32)
    w2.doc.push(PatchCommand(w2.doc, "image", [(0, 0, snap[:4, :4].copy(), patch)], "an edit"))
    w2.wait_autosave()  # the edit while the autosave wrote copied the image: the snapshot stayed
    assert w2.doc.image is not snap and np.array_equal(snap, edited)
    files = list(auto.glob("autosave-*.rlsession"))
    assert len(files) == 1
    from restorelab.session import load_session

    np.testing.assert_array_equal(load_session(files[0]).image, edited)
    # a clean exit clears the autosave
    w2.doc.undo.setClean()
    w2.close()
    assert list(auto.glob("autosave-*")) == []


def test_autosave_discard_and_disabled(
    qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dialog_log: Any, sample_png: str
) -> None:
    from PySide6.QtCore import QSettings

    from restorelab.gui.main_window import MainWindow
    from restorelab.session import Session, save_session

    auto = tmp_path / "autosave"
    auto.mkdir()
    dead = auto / "autosave-999999998-abc.rlsession"
    save_session(dead, Session(image=np.zeros((4, 4), np.float32)))
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    # RESTORELAB_NO_AUTOSAVE=1 (the test default): nothing is offered, nothing is written
    w = MainWindow(settings, autosave_dir=auto)
    qtbot.addWidget(w)
    assert not w.autosaver.enabled and not w.offer_recovery()
    assert w.open_path(sample_png)
    qtbot.waitUntil(lambda: w.doc is not None and not w.ctx.busy, timeout=10000)
    w.autosave(force=True)
    w.wait_autosave()
    assert not [f for f in auto.iterdir() if f"-{os.getpid()}-" in f.name]  # nothing of this run written
    w.shutdown()
    # enabled: dialog_log's exec answers neither Restore → Discard; the file goes
    monkeypatch.delenv("RESTORELAB_NO_AUTOSAVE", raising=False)
    w = MainWindow(settings, autosave_dir=auto)
    qtbot.addWidget(w)
    assert not w.offer_recovery()
    assert any(k == "box" and t == "Recover unsaved work?" for k, t, *_ in dialog_log)
    assert not dead.exists()
    w.shutdown()


def test_cuda_oom_falls_back_with_status_message(
    win: Any, qtbot: Any, dialog_log: Any, monkeypatch: pytest.MonkeyPatch, wait_idle: Any
) -> None:
    monkeypatch.setitem(denoise._REGISTRY, FirstCallOOMDenoiser.name, FirstCallOOMDenoiser)
    monkeypatch.setattr(FirstCallOOMDenoiser, "calls", [])
    win.feature("denoise").panel.refresh_methods()
    win.feature("denoise").panel.select("_test_oom_once")
    win.feature("denoise").panel.live.setChecked(False)
    doc = win.doc
    before = doc.image.copy()
    messages: list[str] = []
    monkeypatch.setattr(win.statusBar(), "showMessage", lambda m, *a: messages.append(m))
    assert win.feature("denoise").run(device="cuda")
    wait_idle(win)
    assert doc.undo.count() == 1
    np.testing.assert_allclose(doc.image, 0.25 * before, atol=1e-6)
    # the first call ran out of memory, the tiled retry (same device) succeeded
    assert FirstCallOOMDenoiser.calls == ["cuda", "cuda"]
    assert any("out of memory" in m and "retrying in tiles" in m for m in messages)
    assert any(m.startswith("Denoise") and "out of memory" in m for m in messages)  # kept in the final note
    assert not [x for x in dialog_log if x[0] in ("box", "information")]


def test_cuda_oom_everywhere_but_cpu(win: Any, qtbot: Any, dialog_log: Any, wait_idle: Any,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The conftest's denoiser runs out of memory on any GPU (also tiled): the CPU run finishes."""
    doc = win.doc
    before = doc.image.copy()
    win.feature("denoise").panel.select("_test_oom")
    win.feature("denoise").panel.live.setChecked(False)
    messages: list[str] = []
    monkeypatch.setattr(win.statusBar(), "showMessage", lambda m, *a: messages.append(m))
    assert win.feature("denoise").run(device="cuda")
    wait_idle(win)
    assert doc.undo.count() == 1
    np.testing.assert_allclose(doc.image, 0.5 * before, atol=1e-6)
    assert any("retrying in tiles" in m for m in messages)
    assert any("retrying on the CPU" in m for m in messages)
    assert not [x for x in dialog_log if x[0] in ("box", "information")]


def test_session_shortcuts(win: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wait_idle: Any) -> None:
    """File > Save Session… (Ctrl+Shift+S) and Open Session… (Ctrl+Shift+O) through their keys."""
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QFileDialog

    p = tmp_path / "keys.rlsession"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(p), "")))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(p), "")))
    win.doc.apply_mask(np.full(win.doc.mask.shape, 255, np.uint8), "all")
    QTest.keySequence(win, "Ctrl+Shift+S")
    assert p.is_file() and win.session_path == p
    win.doc.undo.setClean()
    old = win.doc
    QTest.keySequence(win, "Ctrl+Shift+O")
    wait_idle(win)
    assert win.doc is not old and int(win.doc.mask.min()) == 255
    assert "Save Sess&ion…" in [a.text() for a in win.menuBar().actions()[0].menu().actions()]
