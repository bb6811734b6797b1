"""The InDI dock: a run restores the document off the GUI thread as the core would, the
scrubber walks x_t, and a cancelled run leaves the document as it was."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch


@pytest.fixture
def tiny_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny untrained JPEG model installed in place of the shipped ones."""
    from restorelab.indi import paths
    from restorelab.indi.net import build_indi
    from restorelab.indi.weights import save_indi

    torch.manual_seed(0)
    net = build_indi(3, 2, 4)
    with torch.no_grad():
        net.out.conv.weight.normal_(0.0, 0.1)  # not the identity a fresh network is
    p = save_indi(tmp_path / "indi_jpeg.safetensors", net, "jpeg", 0.01)
    monkeypatch.setattr(paths, "model_path", lambda d: tmp_path / f"indi_{d}.safetensors")
    return p


def _choose(win: Any, deg: str, steps: int, seed: int) -> Any:
    f = win.feature("indi")
    f.degradation.setCurrentIndex(f.degradation.findData(deg))
    f.steps.setValue(steps)
    f.seed.setValue(seed)
    return f


def test_indi_run_restores_the_document_and_scrubs_the_trajectory(
    win: Any, qtbot: Any, wait_idle: Any, tiny_models: Path
) -> None:
    from restorelab.indi.restore import restore

    doc = win.doc
    before = doc.image.copy()
    want = restore(before, "jpeg", 3, seed=5, model=tiny_models, device="cpu")
    f = _choose(win, "jpeg", 3, 5)
    assert f.run()
    wait_idle(win)
    np.testing.assert_allclose(doc.image, want.image, atol=1e-5)
    assert np.abs(doc.image - before).max() > 0.05
    assert doc.undo.count() == 1
    assert f.scrub.isEnabled() and f.scrub.maximum() == 3
    f.scrub.setValue(0)  # x_1: the (noisy) input shown over the canvas
    assert win.canvas.preview_item.isVisible()
    assert "t = 1.000" in f.info.text()
    doc.undo.undo()
    np.testing.assert_array_equal(doc.image, before)


def test_indi_refuses_a_degradation_without_a_model(win: Any, tiny_models: Path, dialog_log: Any) -> None:
    before = win.doc.image.copy()
    f = _choose(win, "blur", 2, 0)
    assert not f.run()
    assert dialog_log and "No InDI model" in dialog_log[-1][2]
    np.testing.assert_array_equal(win.doc.image, before)


def test_indi_cancel_leaves_the_document_unchanged(
    win: Any, qtbot: Any, wait_idle: Any, tiny_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from restorelab.indi import restore as core
    from restorelab.indi.net import build_indi

    class Slow(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = build_indi(3, 2, 4).eval()
            self.multiple = self.net.multiple

        def receptive_radius(self) -> int:
            return self.net.receptive_radius()

        def forward(self, z: torch.Tensor, t: float) -> torch.Tensor:
            time.sleep(0.05)
            return self.net(z, t)

    monkeypatch.setattr(core, "load_for", lambda deg, model=None, device="cpu": (Slow(), 0.01))
    doc = win.doc
    before = doc.image.copy()
    f = _choose(win, "jpeg", 200, 0)
    assert f.run()
    qtbot.waitUntil(lambda: win.ctx.jobs.worker is not None and win.ctx.jobs.worker.steps >= 3, timeout=10000)
    win.ctx.cancel()
    wait_idle(win)
    np.testing.assert_array_equal(doc.image, before)
    assert doc.undo.count() == 0 and not f.scrub.isEnabled()
