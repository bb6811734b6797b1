"""The Analysis dock: the adaptive filter at a clicked pixel and the basis of the view,
computed by restorelab.analysis off the GUI thread."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt

from restorelab import analysis, denoise


def test_probe_shows_the_adaptive_filter_of_a_linear_denoiser(win: Any, qtbot: Any) -> None:
    f = win.feature("analysis")
    f.method.setCurrentIndex(f.method.findData("gaussian"))
    win.ctx.set_tool("probe")
    win.canvas.handler.click(40.5, 30.5, Qt.KeyboardModifier.NoModifier)  # x = col 40, y = row 30
    qtbot.waitUntil(lambda: f.filter_item.image is not None, timeout=20000)
    den = denoise.get("gaussian")
    crop = analysis.crop_around(win.doc.shape, (30, 40), 32)
    ref = analysis.adaptive_filter(den, win.doc.image, f.sigma_value(), (30, 40), crop).mean(axis=2)
    shown = f.filter_item.image
    np.testing.assert_allclose(shown, ref / np.abs(ref).max(), atol=1e-6)
    assert "row 30, col 40" in f.info.text()
    # a different σ changes the filter (recomputed by itself)
    f.sigma.setValue(60.0)
    qtbot.waitUntil(lambda: not np.allclose(f.filter_item.image, shown), timeout=20000)


def test_basis_of_the_view_for_the_heat_equation(win: Any, wait_idle: Any) -> None:
    f = win.feature("analysis")
    f.method.setCurrentIndex(f.method.findData("heat"))
    f.k.setValue(4)
    assert f.compute_basis()
    wait_idle(win, timeout=120000)
    ev = np.asarray(f.basis.eigenvalues)
    assert ev.size == 32 * 32 * 3 and ev.min() > -1e-6 and ev.max() <= 1 + 1e-6  # a heat filter shrinks
    assert abs(float(f.basis.trace) - float(ev.sum())) < 1e-3
    x, y = f.spectrum_curve.getData()
    assert len(x) == ev.size
    assert "tr J" in f.info.text()
