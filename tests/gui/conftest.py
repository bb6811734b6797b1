"""GUI test fixtures: offscreen Qt, non-blocking message boxes, a slow test denoiser."""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from restorelab import denoise  # noqa: E402
from restorelab.denoise.base import Denoiser  # noqa: E402
from restorelab.jobs import Progress  # noqa: E402
from restorelab.params import Param  # noqa: E402


class SlowTestDenoiser(Denoiser):
    """Test double: ``steps`` iterations of x ← (x + local mean)/2, ``delay`` s each."""

    name = "_test_slow"
    title = "Slow test denoiser"
    iterative = True
    params = (
        Param("steps", int, 5, lo=1, hi=10000, help="iterations"),
        Param("delay", float, 0.0, lo=0.0, hi=1.0, help="seconds per iteration"),
    )

    def _job(self, x: np.ndarray, sigma: float, p: Any) -> Generator[Progress, None, np.ndarray]:
        out = x.copy()
        for i in range(p["steps"]):
            if p["delay"]:
                time.sleep(p["delay"])
            out = 0.5 * out + 0.25 * (np.roll(out, 1, 0) + np.roll(out, 1, 1))
            yield Progress(i + 1, p["steps"], message=f"step {i + 1}")
        return out.astype(np.float32)


class FastTestDenoiser(Denoiser):
    """Test double, one shot: x ← x^gamma (so a preview is easy to check)."""

    name = "_test_fast"
    title = "Fast test denoiser"
    cost_s_per_mp = 0.01
    params = (Param("gamma", float, 2.0, lo=0.5, hi=4.0, help="exponent"),)

    def _denoise(self, x: np.ndarray, sigma: float, p: Any) -> np.ndarray:
        return (x ** p["gamma"]).astype(np.float32)


class OOMTestDenoiser(Denoiser):
    """Test double: runs out of GPU memory unless it runs on the CPU."""

    name = "_test_oom"
    title = "GPU-hungry test denoiser"

    def _denoise(self, x: np.ndarray, sigma: float, p: Any) -> np.ndarray:
        if self.device != "cpu":
            raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB (simulated)")
        return (0.5 * x).astype(np.float32)


@pytest.fixture(scope="session", autouse=True)
def no_modal_dialog_can_block() -> Generator[list[str], None, None]:
    """A modal dialog nobody answers blocks the offscreen event loop in C++, where no test
    timeout can interrupt it. For the whole session every dialog answers at once (Cancel /
    rejected / no file) and is recorded; ``dialog_log`` patches on top of this per test, and
    windows closed after a test's patches are undone (qtbot's teardown) meet this guard."""
    from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox

    seen: list[str] = []
    B = QMessageBox.StandardButton
    mp = pytest.MonkeyPatch()
    mp.setattr(QDialog, "exec", lambda self: (seen.append(self.windowTitle()), 0)[1])
    mp.setattr(QMessageBox, "exec", lambda self: (seen.append(self.windowTitle()), int(B.Cancel.value))[1])
    for name in ("information", "warning", "critical", "question"):
        mp.setattr(QMessageBox, name, staticmethod(lambda *a, **k: (seen.append(str(a[1:2])), B.Cancel)[1]))
    for name in ("getOpenFileName", "getSaveFileName", "getExistingDirectory"):
        mp.setattr(QFileDialog, name, staticmethod(lambda *a, **k: (seen.append(str(a[1:2])), ("", ""))[1]))
    yield seen
    mp.undo()


@pytest.fixture(autouse=True)
def collect_on_the_gui_thread() -> Generator[None, None, None]:
    """Windows of finished tests sit in reference cycles; collect them here, on the GUI
    thread, after qtbot has closed them, so that no collection on a worker thread of a later
    test finalises their Qt wrappers away from their thread."""
    yield
    import gc

    gc.collect()


@pytest.fixture(autouse=True)
def test_denoisers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test doubles are in the registry only during GUI tests (not the whole session)."""
    denoise.names()  # load the real families first
    for cls in (SlowTestDenoiser, FastTestDenoiser, OOMTestDenoiser):
        monkeypatch.setitem(denoise._REGISTRY, cls.name, cls)


class DialogLog(list):
    def kinds(self) -> list[str]:
        return [k for k, *_ in self]


@pytest.fixture
def dialog_log(monkeypatch: pytest.MonkeyPatch) -> DialogLog:
    """Every message box is recorded instead of shown; questions answer ``answer[0]``."""
    from PySide6.QtWidgets import QMessageBox

    log = DialogLog()
    log.answer = [QMessageBox.StandardButton.No]  # type: ignore[attr-defined]

    def exec_(self: QMessageBox) -> int:
        log.append(("box", self.windowTitle(), self.text(), self.detailedText()))
        return int(QMessageBox.StandardButton.Ok.value)

    monkeypatch.setattr(QMessageBox, "exec", exec_)
    for name in ("information", "warning", "critical"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(lambda *a, _n=name, **k: (
            log.append((_n, *a[1:3])), QMessageBox.StandardButton.Ok)[1]))
    monkeypatch.setattr(QMessageBox, "about", staticmethod(lambda *a, **k: log.append(("about", *a[1:3]))))
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: (
        log.append(("question", *a[1:3])), log.answer[0])[1]))  # type: ignore[attr-defined]
    return log


@pytest.fixture
def sample_png(tmp_path: Any, astronaut_small: np.ndarray) -> str:
    from restorelab.io import save_image

    p = tmp_path / "small.png"
    save_image(p, astronaut_small)
    return str(p)


@pytest.fixture
def win(qtbot: Any, tmp_path: Any, dialog_log: DialogLog, sample_png: str) -> Any:
    from PySide6.QtCore import QSettings

    from restorelab.gui.main_window import MainWindow

    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.show()
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=2000)
    assert w.open_path(sample_png)
    qtbot.waitUntil(lambda: w.doc is not None and not w.ctx.busy, timeout=10000)
    yield w
    if w.doc is not None:
        w.doc.undo.setClean()
    w.shutdown()


@pytest.fixture
def wait_idle(qtbot: Any) -> Any:
    """``wait_idle(win)``: process events until the window's job has ended."""

    def wait(w: Any, timeout: int = 30000) -> None:
        qtbot.waitUntil(lambda: not w.ctx.busy, timeout=timeout)

    return wait


@pytest.fixture
def open_wait(qtbot: Any) -> Any:
    """``open_wait(win, path)``: open ``path`` (a job) and wait until it has ended."""

    def run(w: Any, path: Any, timeout: int = 10000) -> bool:
        started = w.open_path(str(path))
        qtbot.waitUntil(lambda: not w.ctx.busy, timeout=timeout)
        return started

    return run
