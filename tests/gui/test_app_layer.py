"""The application layer as a new user meets it: results belong to their document, cancel
restores the canvas, the split shows original against result, clone drags restart from the
source, Redo has its keys, the toolbar holds still, Save As proposes the user's folder, and
undo memory is bounded by the undo limit."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest

from restorelab import edit
from restorelab.gui.display import to_display


def _run_sampler(win: Any, task: str, *, samples: int = 1, max_iter: int = 12) -> Any:
    sv = win.feature("sampler")
    sv.task.setCurrentIndex(sv.task.findData(task))
    sv.denoiser.setCurrentIndex(sv.denoiser.findData("_test_slow"))
    sv.size.setValue(16)
    rows = sv.form.rows
    rows["max_iter"].set(max_iter)
    rows["patience"].set(max_iter)
    if "samples" in rows:
        rows["samples"].set(samples)
    assert sv.run()
    return sv


def test_opening_another_image_clears_sampler_and_multiscale_results(
    win: Any, wait_idle: Any, open_wait: Any, tmp_path: Path, astronaut_small: np.ndarray
) -> None:
    from restorelab.io import save_image

    sv = _run_sampler(win, "sample")
    wait_idle(win)
    assert sv.result is not None
    ms = win.feature("multiscale")
    ms.denoiser.setCurrentIndex(ms.denoiser.findData("_test_fast"))
    assert ms.run()
    wait_idle(win)
    assert ms.decomp is not None and ms.apply_button.isEnabled()
    other = tmp_path / "other.png"
    save_image(other, astronaut_small[:50, :60])
    assert open_wait(win, other)
    assert win.doc.path == other
    assert sv.result is None and not sv.apply_button.isEnabled() and sv.show_what.count() == 0
    assert not sv.apply_result()  # nothing of the old image can be pasted into this one
    assert ms.decomp is None and not ms.apply_button.isEnabled() and not ms.apply()
    assert win.doc.undo.count() == 0


def test_cancelled_sampler_run_leaves_the_canvas_as_it_was(win: Any, qtbot: Any, wait_idle: Any) -> None:
    doc = win.doc
    before = doc.image.copy()
    doc.mask[20:30, 20:30] = 255
    sv = win.feature("sampler")
    sv.task.setCurrentIndex(sv.task.findData("pixels"))
    sv.denoiser.setCurrentIndex(sv.denoiser.findData("_test_slow"))
    sv.form.rows["max_iter"].set(100000)
    sv.form.rows["patience"].set(100000)
    sv.form.rows["preview_every"].set(1)
    assert sv.run()
    qtbot.waitUntil(win.canvas.preview_item.isVisible, timeout=10000)  # y_t is shown while it runs
    win.ctx.cancel()
    wait_idle(win)
    assert not win.canvas.preview_item.isVisible()
    np.testing.assert_array_equal(doc.image, before)
    assert sv.result is None and not sv.apply_button.isEnabled()


def test_scrubbed_frame_goes_when_the_result_view_changes(win: Any, qtbot: Any, wait_idle: Any) -> None:
    sv = _run_sampler(win, "pixels", max_iter=20)
    wait_idle(win)
    frames = list(sv.result.frames)
    assert len(frames) > 1
    sv.scrub.setValue(0)  # an early, noisy y_t over the canvas
    assert win.canvas.preview_item.isVisible()
    sv.show_what.setCurrentIndex(sv.show_what.findText("mean of the samples"))
    assert not win.canvas.preview_item.isVisible()


def test_std_view_cannot_be_applied_and_explains_one_sample(win: Any, wait_idle: Any) -> None:
    sv = _run_sampler(win, "pixels", samples=1)
    wait_idle(win)
    sv.show_what.setCurrentIndex(sv.show_what.count() - 1)  # the std view
    assert not sv.apply_button.isEnabled() and "uncertainty map is not an image" in sv.apply_button.toolTip()
    assert "K ≥ 2" in sv.info.text()
    assert not sv.apply_result()
    sv.show_what.setCurrentIndex(0)
    assert sv.apply_button.isEnabled()


def test_split_compares_original_and_result_not_the_preview(win: Any, qtbot: Any) -> None:
    c, doc = win.canvas, win.doc
    c.show_preview(np.zeros_like(doc.image))  # e.g. the live preview of a crop
    win.a_compare.trigger()
    assert c.before_clip.isVisible() and c.before_clip.zValue() > c.preview_item.zValue()
    np.testing.assert_array_equal(c.before_item.image, to_display(doc.original))
    win.a_compare.trigger()


def test_a_new_clone_drag_starts_from_the_source(win: Any, wait_idle: Any) -> None:
    doc = win.doc
    doc.mask[10:30, 12:34] = 255
    win.ctx.set_tool("clone")
    tool = win.feature("clone")
    tool.press(20, 20, Qt.KeyboardModifier.NoModifier)
    tool.release(20 + 30, 20 + 25, Qt.KeyboardModifier.NoModifier)
    assert tool.offset == (25, 30)
    assert tool.commit()
    wait_idle(win)
    assert tool.offset == (0, 0) and not tool.active
    tool.press(20, 20, Qt.KeyboardModifier.NoModifier)  # from the source again
    tool.release(25, 22, Qt.KeyboardModifier.NoModifier)
    assert tool.offset == (2, 5)
    tool.cancel()


def test_clone_commit_during_a_running_preview_gives_the_exact_clone(
    win: Any, qtbot: Any, wait_idle: Any
) -> None:
    """The preview's placement is still running (slowed down) when Enter is pressed: the
    commit waits for it instead of racing it, and the result is the exact clone."""
    doc = win.doc
    dst = doc.image.copy()
    doc.mask[10:30, 12:34] = 255
    win.ctx.set_tool("clone")
    tool = win.feature("clone")
    assert tool.begin((0, 0))
    session = tool.session
    slow = threading.Event()
    real_place = type(session).place

    def place(self: Any, *a: Any, **k: Any) -> Any:
        if slow.is_set():
            time.sleep(0.3)
        return real_place(self, *a, **k)

    type(session).place = place
    try:
        slow.set()
        tool.move_to((40, 45))
        qtbot.waitUntil(lambda: tool.runner.running, timeout=2000)
        assert tool.commit()
        wait_idle(win)
    finally:
        type(session).place = real_place
    ref = edit.seamless_clone(dst, dst, doc.mask >= 128, offset=(40, 45), mode="import")
    np.testing.assert_allclose(doc.image, ref, atol=1e-5)


def test_redo_has_both_keys_and_no_shortcut_is_ambiguous(win: Any) -> None:
    doc = win.doc
    before = doc.image.copy()
    doc.apply_image(np.clip(doc.image + 0.1, 0, 1), "brighten")
    after = doc.image.copy()
    for keys in ("Ctrl+Shift+Z", "Ctrl+Y"):
        QTest.keySequence(win, "Ctrl+Z")
        np.testing.assert_array_equal(doc.image, before)
        QTest.keySequence(win, keys)
        np.testing.assert_array_equal(doc.image, after)
    seen: dict[str, str] = {}
    for a in win.actions():
        for s in a.shortcuts():
            k = s.toString(QKeySequence.SequenceFormat.PortableText)
            assert k not in seen, f"{k} is bound to both {seen[k]!r} and {a.text()!r}"
            seen[k] = a.text()


def test_toolbar_does_not_move_after_an_edit(win: Any, qtbot: Any) -> None:
    tb = win.toolbar
    qtbot.wait(20)
    geo = [tb.widgetForAction(a).geometry() for a in tb.actions() if tb.widgetForAction(a) is not None]
    win.doc.apply_image(np.clip(win.doc.image * 0.5, 0, 1), "Denoise: a long method name, σ=25.0")
    qtbot.wait(20)
    after = [tb.widgetForAction(a).geometry() for a in tb.actions() if tb.widgetForAction(a) is not None]
    assert after == geo
    assert win.a_undo.text() == "&Undo" and "a long method name" in win.a_undo.toolTip()


def test_save_as_proposes_the_users_folder_and_retitles(
    win: Any, tmp_path: Path, monkeypatch: Any, open_wait: Any
) -> None:
    from PySide6.QtWidgets import QFileDialog

    from restorelab.resources import sample_path

    assert open_wait(win, sample_path())  # the built-in sample lives inside the package
    user = tmp_path / "photos"
    user.mkdir()
    win.ctx.set_last_dir(user)
    asked: list[str] = []
    target = user / "mine.png"

    def dialog(parent: Any, title: str, suggest: str, *a: Any) -> tuple[str, str]:
        asked.append(suggest)
        return str(target), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(dialog))
    win.doc.apply_image(np.clip(win.doc.image * 0.9, 0, 1), "an edit")
    assert win.save_as()
    assert Path(asked[0]).parent == user
    assert target.is_file() and win.windowTitle().startswith("mine.png")
    assert win.doc.title == "mine.png"


def test_undo_store_is_bounded_by_the_undo_limit(qtbot: Any) -> None:
    from restorelab.gui.document import Document

    rng = np.random.default_rng(0)
    doc = Document(rng.random((64, 64, 3), dtype=np.float32), undo_limit=10)
    for i in range(25):
        doc.apply_image(np.clip(doc.image + 0.01, 0, 1), f"edit {i}")
        m = np.zeros((64, 64), np.uint8)
        m[i : i + 5, :] = 255
        doc.apply_mask(m, f"mask {i}")
    assert doc.undo.count() == 10
    keys = set()
    for i in range(doc.undo.count()):
        keys.update(doc.undo.command(i).store_keys)
    assert doc.store.keys() == keys and len(keys) <= 10 * 3
    assert doc.store.spilled == 0
    # commands undone and then replaced by a new edit are freed too
    for _ in range(5):
        doc.undo.undo()
    doc.apply_image(np.zeros_like(doc.image), "replace")
    assert doc.undo.count() == 6 and len(doc.store.keys()) <= 6 * 3
