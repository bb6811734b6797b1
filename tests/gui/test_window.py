"""Drive the real main window: open, paint + undo, denoise (cancel / complete / undo),
corrupt file, save rules, 16-bit kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication


def _send(win: Any, kind: QEvent.Type, x: float, y: float, button: Any, buttons: Any) -> None:
    vp = win.canvas.viewport()
    p = win.canvas.mapFromScene(win.canvas.vb.mapViewToScene(QPointF(x, y)))
    glob = QPointF(vp.mapToGlobal(p))
    ev = QMouseEvent(kind, QPointF(p), glob, button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(vp, ev)


def drag(win: Any, points: list[tuple[float, float]]) -> None:
    """A real left-button drag through the canvas viewport (image coordinates)."""
    L, N = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    _send(win, QEvent.Type.MouseMove, *points[0], N, N)
    _send(win, QEvent.Type.MouseButtonPress, *points[0], L, L)
    for x, y in points[1:]:
        QTest.qWait(15)  # pyqtgraph drops moves closer than its mouse rate limit, as a hand would
        _send(win, QEvent.Type.MouseMove, x, y, N, L)
        QApplication.processEvents()
    _send(win, QEvent.Type.MouseButtonRelease, *points[-1], L, N)
    QApplication.processEvents()


def test_open_paint_and_undo(win: Any) -> None:
    doc = win.doc
    assert doc.image.shape == (96, 96, 3)
    assert doc.mask.sum() == 0
    win.tool_actions["brush"].trigger()
    win.feature("mask").set_radius(4, True)
    drag(win, [(20 + 3 * i, 30 + i) for i in range(15)])
    painted = doc.mask.copy()
    assert painted[30, 20] == 255 and painted[44, 62] == 255  # both ends of the stroke
    assert painted[80, 80] == 0
    assert doc.undo.count() == 1 and doc.dirty
    QTest.keySequence(win, "Ctrl+Z")  # Edit > Undo through its shortcut
    assert doc.mask.sum() == 0
    doc.undo.redo()
    np.testing.assert_array_equal(doc.mask, painted)
    # the eraser removes paint, also undoable
    win.tool_actions["eraser"].trigger()
    drag(win, [(20, 30), (30, 33)])
    assert doc.mask[30, 20] == 0
    doc.undo.undo()
    assert doc.mask[30, 20] == 255


def test_mask_actions_undoable(win: Any, tmp_path: Path, wait_idle: Any) -> None:
    doc = win.doc
    mask = win.feature("mask")
    mask.invert()
    assert (doc.mask == 255).all()
    mask.clear()
    assert doc.mask.sum() == 0
    doc.undo.undo()
    assert (doc.mask == 255).all()
    doc.mask[:] = 0
    doc.mask[10:20, 10:40] = 255
    assert mask.save(str(tmp_path / "m.png"))
    wait_idle(win)
    mask.clear()
    assert mask.load(str(tmp_path / "m.png"))
    wait_idle(win)
    assert doc.mask[15, 20] == 255 and doc.mask[50, 50] == 0
    # bucket fill closes a painted ring
    doc.mask[:] = 0
    doc.mask[40:60, 40] = doc.mask[40:60, 59] = doc.mask[40, 40:60] = doc.mask[59, 40:60] = 255
    win.ctx.set_tool("fill")
    win.canvas.handler.click(50, 50, Qt.KeyboardModifier.NoModifier)
    wait_idle(win)
    assert doc.mask[50, 50] == 255 and doc.mask[10, 10] == 0


def _select_slow(win: Any, steps: int, delay: float) -> None:
    win.feature("denoise").panel.select("_test_slow")
    win.feature("denoise").panel.form.rows["steps"].set(steps)
    win.feature("denoise").panel.form.rows["delay"].set(delay)
    win.feature("denoise").panel.live.setChecked(False)


def test_denoise_cancel_leaves_document_unchanged(win: Any, qtbot: Any, wait_idle: Any) -> None:
    doc = win.doc
    before = doc.image.copy()
    _select_slow(win, steps=400, delay=0.01)
    assert win.feature("denoise").run()
    assert win.ctx.progress_bar.isVisible() and win.ctx.cancel_button.isVisible()
    qtbot.waitUntil(lambda: win.ctx.jobs.worker is not None and win.ctx.jobs.worker.steps >= 5, timeout=10000)
    assert not win.feature("denoise").run()  # one job at a time: refused while running
    QTest.keyClick(win, Qt.Key.Key_Escape)
    wait_idle(win)
    np.testing.assert_array_equal(doc.image, before)
    assert doc.undo.count() == 0 and not doc.dirty
    assert not win.ctx.progress_bar.isVisible()


def test_denoise_complete_then_undo(win: Any, wait_idle: Any, dialog_log: Any) -> None:
    doc = win.doc
    before = doc.image.copy()
    _select_slow(win, steps=3, delay=0.0)
    assert win.feature("denoise").run()
    wait_idle(win)
    assert not np.array_equal(doc.image, before)
    assert doc.undo.count() == 1 and doc.dirty
    doc.undo.undo()
    np.testing.assert_array_equal(doc.image, before)
    doc.undo.redo()
    assert not np.array_equal(doc.image, before)
    assert dialog_log == []


def test_denoise_inside_mask_only(win: Any, wait_idle: Any) -> None:
    doc = win.doc
    before = doc.image.copy()
    doc.mask[10:30, 10:30] = 255
    _select_slow(win, steps=3, delay=0.0)
    win.feature("denoise").panel.in_mask.setChecked(True)
    win.feature("denoise").run()
    wait_idle(win)
    np.testing.assert_array_equal(doc.image[50:, 50:], before[50:, 50:])
    assert not np.array_equal(doc.image[10:30, 10:30], before[10:30, 10:30])


def test_failing_job_shows_error_and_keeps_document(win: Any, wait_idle: Any, dialog_log: Any) -> None:
    doc = win.doc
    before = doc.image.copy()

    def bad_job() -> Any:
        yield from ()
        raise ValueError("this method needs a grey image")

    win.ctx.run("Broken", bad_job, lambda r: doc.apply_image(r, "never"))
    wait_idle(win)
    np.testing.assert_array_equal(doc.image, before)
    assert dialog_log and "grey image" in dialog_log[-1][2]
    assert "Traceback" in dialog_log[-1][3]


def test_corrupt_file_gives_error_dialog(win: Any, tmp_path: Path, dialog_log: Any, open_wait: Any) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    old = win.doc
    open_wait(win, bad)
    assert win.doc is old
    assert dialog_log and dialog_log[-1][1] == "Cannot open image" and "broken.png" in dialog_log[-1][2]


def test_save_never_overwrites_original_without_confirmation(
    win: Any, sample_png: str, dialog_log: Any, wait_idle: Any
) -> None:
    from PySide6.QtWidgets import QMessageBox

    from restorelab.io import load_image

    doc = win.doc
    original_bytes = Path(sample_png).read_bytes()
    doc.apply_image(np.clip(doc.image + 0.2, 0, 1), "brighten")
    dialog_log.answer[0] = QMessageBox.StandardButton.No
    assert not win.save_to(sample_png)
    assert Path(sample_png).read_bytes() == original_bytes
    assert dialog_log[-1][0] == "question"
    out = Path(sample_png).with_name("copy.png")
    assert win.save_to(str(out))
    assert not doc.dirty
    np.testing.assert_allclose(load_image(out), doc.image, atol=1 / 255)
    dialog_log.answer[0] = QMessageBox.StandardButton.Yes
    assert win.save_to(sample_png)
    assert Path(sample_png).read_bytes() != original_bytes


def test_sixteen_bit_kept(qtbot: Any, win: Any, tmp_path: Path, open_wait: Any) -> None:
    from restorelab.io import image_info, load_image, save_image

    ramp = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    src = tmp_path / "deep.png"
    save_image(src, ramp, bit_depth=16)
    assert open_wait(win, src)
    assert win.doc.bit_depth == 16
    out = tmp_path / "deep_out.png"
    assert win.save_to(str(out))
    assert image_info(out).bit_depth == 16
    np.testing.assert_allclose(load_image(out), ramp, atol=1 / 65535)


def test_status_bar_and_view(win: Any, qtbot: Any) -> None:
    win.canvas.fit()
    win.canvas.one_to_one()
    QApplication.processEvents()
    assert abs(win.canvas.zoom() - 1.0) < 0.05
    assert win.zoom_label.text().endswith("%")
    # the device is named once torch is up (deferred so the window shows before torch loads)
    qtbot.waitUntil(lambda: win.device_label.text() != "device: …", timeout=5000)
    assert win.device_label.text() in ("CPU",) or win.device_label.text().startswith("GPU")
    win.canvas._mouse_moved(win.canvas.vb.mapViewToScene(QPointF(10.5, 20.5)))
    assert win.cursor_label.text().startswith("x 10, y 20")
    win.a_compare.trigger()
    assert win.canvas.split_line.isVisible() and win.canvas.before_clip.isVisible()
    win.a_compare.trigger()
    QTest.keyPress(win, Qt.Key.Key_Backslash)
    assert win.canvas.before_clip.isVisible()
    QTest.keyRelease(win, Qt.Key.Key_Backslash)
    assert not win.canvas.before_clip.isVisible()
    win.canvas.setFocus()
    QTest.keyPress(win.canvas, Qt.Key.Key_Backslash)  # also while the canvas has the focus
    assert win.canvas.before_clip.isVisible()
    QTest.keyRelease(win.canvas, Qt.Key.Key_Backslash)
    assert not win.canvas.before_clip.isVisible()
    from restorelab.gui import help

    help.about(win, win.device_label.text())


def test_live_preview_on_visible_crop(win: Any, qtbot: Any) -> None:
    """A fast method previews a crop of the view, debounced; the document is untouched."""
    doc = win.doc
    before = doc.image.copy()
    win.feature("denoise").panel.live.setChecked(True)
    win.feature("denoise").panel.select("_test_fast")
    qtbot.waitUntil(win.canvas.preview_item.isVisible, timeout=5000)
    win.feature("denoise").panel.form.rows["gamma"].set(3.0)
    win.feature("denoise").panel.form.changed.emit()
    item = win.canvas.preview_item
    target = float((before**3).mean() * 255)
    qtbot.waitUntil(
        lambda: item.image is not None and abs(float(item.image.mean()) - target) < 3, timeout=5000
    )
    y, x = int(item.pos().y()), int(item.pos().x())
    h, w = item.image.shape[:2]
    from restorelab.gui.canvas import to_display

    np.testing.assert_array_equal(item.image, to_display(before[y : y + h, x : x + w] ** 3))
    np.testing.assert_array_equal(doc.image, before)


def test_drop_opens_and_recent_files(
    win: Any, tmp_path: Path, astronaut_small: np.ndarray, wait_idle: Any
) -> None:
    from PySide6.QtCore import QMimeData, QPoint, QUrl
    from PySide6.QtGui import QDropEvent

    from restorelab.io import save_image

    p = tmp_path / "dropped.png"
    save_image(p, astronaut_small[:40, :50])
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p))])
    ev = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                    Qt.KeyboardModifier.NoModifier)
    win.dropEvent(ev)
    wait_idle(win)
    assert win.doc.path == p and win.doc.image.shape == (40, 50, 3)
    recent = [a.text() for a in win.recent.menu.actions()]
    assert recent[0] == str(p.resolve()) and len(recent) == 2
    assert "dropped.png" in win.windowTitle()
