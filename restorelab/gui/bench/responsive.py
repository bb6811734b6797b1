"""Measure GUI responsiveness while a sampler job runs in the worker.

``python -m restorelab.gui.bench.responsive [--seconds 4] [--denoiser NAME] [--size 32]``

A 5 ms ``QTimer`` ticks on the GUI thread of the real main window while Algorithm 1 runs;
the longest interval between two ticks is the worst stall of the GUI thread. Also prints
how often the σ_t curve was redrawn. Runs offscreen; prints one Markdown table row set.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def measure(seconds: float = 4.0, denoiser: str | None = None, size: int = 32) -> dict[str, float]:
    """Run the sampler for ``seconds`` and return worst/p99/median tick gaps (ms), the σ_t
    plot update rate (1/s) and the iterations done; the idle baseline is measured first."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QSettings, QTimer

    from restorelab.gui.app import create_app
    from restorelab.gui.main_window import MainWindow

    app = create_app([sys.argv[0]])
    from restorelab.gui import dialogs

    def _error(parent: object, title: str, message: str, details: str = "") -> None:
        raise SystemExit(f"{title}: {message}\n{details}")

    dialogs.error = _error  # a headless run must not wait on a modal box
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "restorelab-bench.ini")
    os.environ["RESTORELAB_NO_AUTOSAVE"] = "1"  # headless: no recovery question, no autosave files
    win = MainWindow(QSettings(tmp, QSettings.Format.IniFormat))
    win.show()
    from restorelab.resources import sample_path

    win.open_path(str(sample_path()))

    def ticks(duration: float, during: object = None) -> list[float]:
        gaps: list[float] = []
        clock = QElapsedTimer()
        timer = QTimer()
        timer.setInterval(5)

        def tick() -> None:
            if clock.isValid():
                gaps.append(clock.nsecsElapsed() / 1e6)
            clock.restart()

        timer.timeout.connect(tick)
        timer.start()
        loop = QEventLoop()
        QTimer.singleShot(int(duration * 1000), loop.quit)
        loop.exec()
        timer.stop()
        return gaps

    idle = ticks(1.0)
    sv = win.feature("sampler")
    sv.task.setCurrentIndex(sv.task.findData("sample"))
    names = [sv.denoiser.itemData(i) for i in range(sv.denoiser.count())]
    name = denoiser or ("bfcnn" if "bfcnn" in names else next(n for n in names if not n.startswith("_")))
    sv.denoiser.setCurrentIndex(sv.denoiser.findData(name))
    sv.size.setValue(size)
    sv.form.rows["max_iter"].set(100000)
    sv.form.rows["patience"].set(100000)
    sv.form.rows["sigma_L"].set(1e-4)
    sv.run()
    busy = ticks(seconds)
    win.ctx.jobs.cancel()
    while win.ctx.jobs.busy:
        app.processEvents()
        time.sleep(0.01)
    ups = sv.plot_updates
    out = {
        "denoiser": name,
        "idle_worst_ms": max(idle),
        "idle_p99_ms": float(np.percentile(idle, 99)),
        "worst_ms": max(busy),
        "p99_ms": float(np.percentile(busy, 99)),
        "median_ms": float(np.median(busy)),
        "plot_updates_per_s": (len(ups) - 1) / max(ups[-1] - ups[0], 1e-9) if len(ups) > 1 else 0.0,
        "iterations": len(sv.t),
    }
    win.doc.undo.setClean()
    win.shutdown()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--denoiser", default=None)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument(
        "--out", default="BENCHMARKS.md", help="markdown file whose gui-responsive section is replaced"
    )
    ap.add_argument("--no-write", action="store_true", help="only print")
    a = ap.parse_args(argv)
    from restorelab.bench.report import machine_line, markdown_table

    r = measure(a.seconds, a.denoiser, a.size)
    head = [
        "denoiser",
        "image",
        "iterations",
        "σ_t plot updates/s",
        "GUI worst gap ms",
        "p99 ms",
        "median ms",
        "idle worst ms",
        "idle p99 ms",
    ]
    row = [
        r["denoiser"],
        f"{a.size}²",
        r["iterations"],
        f"{r['plot_updates_per_s']:.1f}",
        f"{r['worst_ms']:.1f}",
        f"{r['p99_ms']:.1f}",
        f"{r['median_ms']:.1f}",
        f"{r['idle_worst_ms']:.1f}",
        f"{r['idle_p99_ms']:.1f}",
    ]
    md = (
        f"A 5 ms QTimer on the GUI thread of the real window while Algorithm 1 runs in the worker for "
        f"{a.seconds:g} s (idle: the same timer with no job, the machine's own noise).\n\n"
        + markdown_table(head, [row])
        + f"\n\n`python -m restorelab.gui.bench.responsive --denoiser {r['denoiser']} --size {a.size}` — "
        f"{machine_line()}\n"
    )
    print(md)
    if not a.no_write:
        from restorelab.bench.report import write_section

        write_section(a.out, "gui-responsive", md, "GUI: responsiveness while the sampler runs")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
