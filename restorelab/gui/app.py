"""Start the application: ``restorelab``, ``restorelab IMAGE``, ``restorelab gui --self-test``."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

__all__ = ["main", "create_app", "self_test_run"]


def create_app(argv: list[str] | None = None):  # noqa: ANN201 - QApplication
    """The QApplication (created once), with the theme applied."""
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    from restorelab.gui.theme import apply_theme

    app = QApplication.instance()
    if app is None:
        QCoreApplication.setOrganizationName("restorelab")
        QCoreApplication.setApplicationName("restorelab")
        app = QApplication(argv if argv is not None else sys.argv[:1])
        apply_theme(app, os.environ.get("RESTORELAB_THEME", "auto"))
    return app


def main(image: str | None = None, *, self_test: bool = False) -> int:
    """Open the main window on ``image`` (default: the built-in noisy sample) and run the
    event loop; with ``self_test`` run :func:`self_test` headless and return its code."""
    t0 = time.monotonic()
    if self_test:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        return self_test_run(image)
    app = create_app()
    from restorelab.gui.main_window import MainWindow

    win = MainWindow()
    win.show()
    path = image
    if path is None:
        from restorelab.resources import sample_path

        sp = sample_path()
        path = str(sp) if Path(sp).exists() else None
    if path is not None:
        win.open_path(path)
    if os.environ.get("RESTORELAB_STARTUP_LOG"):
        # once the event loop has painted the window: wall-clock time, to compare with the launch
        from PySide6.QtCore import QTimer

        def _log() -> None:
            print(
                f"restorelab: window shown with {path} at {time.time():.3f} "
                f"({time.monotonic() - t0:.2f} s after main())",
                flush=True,
            )

        QTimer.singleShot(0, _log)
    return int(app.exec())


def self_test_run(image: str | None = None) -> int:
    """Headless check of the whole chain: open, one denoise, one clone, a 10-step sampler.
    Prints one line per step; returns 0 when all pass."""
    import numpy as np
    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    from restorelab import denoise

    app = create_app([sys.argv[0], "-platform", "offscreen"])
    from restorelab.gui import dialogs
    from restorelab.gui.main_window import MainWindow

    # headless: no modal box may wait for a click; errors are printed and count as failures
    errors: list[str] = []

    def _error(parent: object, title: str, message: str, details: str = "") -> None:
        errors.append(f"{title}: {message}")
        print(f"self-test error: {title}: {message}", file=sys.stderr, flush=True)

    dialogs.error = _error
    dialogs.info = lambda parent, title, message: print(f"self-test note: {title}: {message}", flush=True)
    dialogs.confirm = lambda *a: False
    dialogs.save_discard_cancel = lambda *a: "discard"

    settings = QSettings(
        os.path.join(os.environ.get("TMPDIR", "/tmp"), "restorelab-selftest.ini"), QSettings.Format.IniFormat
    )
    os.environ["RESTORELAB_NO_AUTOSAVE"] = "1"  # headless: no recovery question, no autosave files
    win = MainWindow(settings)
    failures = 0
    outcome: list[str] = []
    win.ctx.jobs.finished.connect(lambda o, _t: outcome.append(o))

    def wait_job(timeout: float = 120.0) -> str:
        outcome.clear()
        t_end = time.monotonic() + timeout
        while win.ctx.busy and time.monotonic() < t_end:
            loop = QEventLoop()
            QTimer.singleShot(20, loop.quit)
            loop.exec()
        app.processEvents()
        return outcome[-1] if outcome else ("timeout" if win.ctx.busy else "not started")

    def report(name: str, ok: bool, extra: str = "") -> None:
        nonlocal failures
        failures += 0 if ok else 1
        print(f"self-test {name}: {'ok' if ok else 'FAILED'} {extra}".rstrip(), flush=True)

    from restorelab.resources import sample_path

    path = image or str(sample_path())
    ok = win.open_path(path) and wait_job() == "done" and win.doc is not None
    report("open", ok, path)
    if not ok:
        return 1
    doc = win.doc
    before = doc.image.copy()
    names = denoise.names()
    fast = [n for n in ("heat", "wavelet", "tikhonov", "tv", "nlm") if n in names] or names
    den = win.feature("denoise")
    den.panel.select(fast[0])
    den.run()
    out = wait_job()
    report("denoise", out == "done" and not np.array_equal(doc.image, before), f"({fast[0]}: {out})")
    clone = win.feature("clone")
    H, W = doc.shape[:2]
    clone.set_ellipse(W * 0.2, H * 0.2, W * 0.15, H * 0.15)
    b = doc.image.copy()
    ok = clone.begin((int(H * 0.3), int(W * 0.3))) and clone.commit()
    out = wait_job()
    report("clone", bool(ok) and out == "done" and not np.array_equal(doc.image, b), f"({out})")
    sv = win.feature("sampler")
    sv.size.setValue(16)
    sv.task.setCurrentIndex(sv.task.findData("sample"))
    if sv.form is not None and "max_iter" in sv.form.rows:
        sv.form.rows["max_iter"].set(10)
    from restorelab.resources import models_dir

    ch = 3 if doc.image.ndim == 3 else 1
    model = Path(models_dir()) / ("bfcnn_color.safetensors" if ch == 3 else "bfcnn_gray.safetensors")
    fast_den = (["bfcnn"] if "bfcnn" in names and model.exists()
                else [n for n in ("wavelet", "gaussian", "heat") if n in names])
    sv.denoiser.setCurrentIndex(sv.denoiser.findData(fast_den[0]))
    sv.run()
    out = wait_job()
    report("sampler", out == "done" and len(sv.t) > 0, f"({len(sv.t)} steps, {out})")
    win.doc.undo.setClean()
    win.close()
    app.processEvents()
    return 0 if failures == 0 and not errors else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
