"""Clone tool against the core, Poisson edit menu, multiscale panel, manifold demo."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from restorelab import edit


def test_clone_drag_matches_core(win: Any, qtbot: Any) -> None:
    doc = win.doc
    dst = doc.image.copy()
    doc.mask[10:30, 12:34] = 255  # the painted source region
    win.set_tool("clone")
    tool = win.clone_tool
    # a drag with the clone tool: press inside the source, move by (dy, dx) = (45, 38)
    tool.press(20, 20, Qt.KeyboardModifier.NoModifier)
    assert tool.active
    for k in range(1, 6):
        tool.move(20 + 38 * k / 5, 20 + 45 * k / 5, Qt.KeyboardModifier.NoModifier)
    tool.release(58, 65, Qt.KeyboardModifier.NoModifier)
    assert tool.offset == (45, 38)
    qtbot.waitUntil(lambda: tool.placements > 0 and win.canvas.preview_item.isVisible(), timeout=10000)
    np.testing.assert_array_equal(doc.image, dst)  # nothing applied while dragging
    QTest.keyClick(win, Qt.Key.Key_Return)  # Enter commits
    assert not tool.active
    ref = edit.seamless_clone(dst, dst, doc.mask >= 128, offset=(45, 38), mode="import")
    np.testing.assert_allclose(doc.image, ref, atol=1e-5)
    ring = edit.prepare(dst, doc.mask >= 128).mask_at((45, 38), dst.shape)
    assert not np.allclose(doc.image[ring], dst[ring])  # the region did change
    assert np.array_equal(doc.image[~ring], dst[~ring])  # nothing outside it
    doc.undo.undo()
    np.testing.assert_array_equal(doc.image, dst)


def test_clone_ellipse_mixed_and_cancel(win: Any, qtbot: Any) -> None:
    doc = win.doc
    dst = doc.image.copy()
    tool = win.clone_tool
    win.clone_panel.params.rows["mode"].set("mixed")
    win.clone_panel._params_changed()
    assert tool.mode == "mixed"
    tool.set_ellipse(5, 5, 30, 20)
    assert tool.begin((40, 50))
    QTest.keyClick(win, Qt.Key.Key_Escape)  # Esc cancels the placement
    assert not tool.active
    np.testing.assert_array_equal(doc.image, dst)
    assert tool.begin((40, 50)) and tool.commit()
    from restorelab.gui.clone_tool import ellipse_mask

    src_mask = ellipse_mask(dst.shape[:2], 5, 5, 30, 20)
    ref = edit.seamless_clone(dst, dst, src_mask, offset=(40, 50), mode="mixed")
    np.testing.assert_allclose(doc.image, ref, atol=1e-5)


def test_poisson_edit_menu_runs_core_op(win: Any, wait_idle: Any) -> None:
    doc = win.doc
    before = doc.image.copy()
    doc.mask[20:60, 20:60] = 255
    assert win.edit_menu.actions(), "Tools > Poisson editing lists the core's operations"
    win.edit_panel.show_op("contrast")
    win.edit_panel.form.rows["factor"].set(2.0)
    assert win.edit_panel.run()
    wait_idle(win)
    ref = edit.apply("contrast", before, before[..., 0] * 0 + (doc.mask >= 128), factor=2.0)
    np.testing.assert_allclose(doc.image, ref, atol=1e-5)
    doc.undo.undo()
    np.testing.assert_array_equal(doc.image, before)


def test_multiscale_gains_recompose(win: Any, qtbot: Any, wait_idle: Any, dialog_log: Any) -> None:
    from restorelab import prior

    panel = win.multiscale_panel
    if panel.denoiser.findData("_test_slow") < 0:
        panel.refresh()
    panel.denoiser.setCurrentIndex(panel.denoiser.findData("_test_slow"))
    panel.form.rows["levels"].set(3)
    assert panel.run()
    wait_idle(win)
    assert dialog_log == []
    assert panel.decomp is not None and len(panel.sliders) == 3
    panel.sliders[0].setValue(2.5)
    qtbot.waitUntil(lambda: panel.recomposed is not None, timeout=5000)
    ref = panel.decomp.recompose([2.5, 1.0, 1.0])
    np.testing.assert_allclose(panel.recomposed, ref, atol=1e-6)
    assert isinstance(panel.decomp, prior.Decomposition)
    assert panel.apply()
    np.testing.assert_allclose(win.doc.image, np.clip(ref, 0, 1), atol=1e-6)


def test_manifold_demo_panel(win: Any, wait_idle: Any) -> None:
    mp = win.manifold_panel
    mp.form.rows["n_points"].set(6)
    mp.form.rows["grid"].set(24)
    mp.form.rows["max_iter"].set(40)
    assert mp.run()
    wait_idle(win, timeout=60000)
    assert mp.data is not None and "traj_alg1" in mp.data
    assert len(mp.plot.listDataItems()) >= 3  # curve + trajectories of both algorithms
