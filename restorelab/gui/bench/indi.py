"""``restorelab bench indi-gui``: the InDI dock of the real window on a large photo.

Opens the window offscreen on ``--image`` (or a synthetic W×H colour image), starts an InDI
restoration from the dock and, while it runs, records the longest interval between two
ticks of a 5 ms ``QTimer`` on the GUI thread (a stall longer than a frame is a window that
does not repaint); after ``--tiles`` progress events it cancels the job and reports how long
the window took to become idle again and whether the document is unchanged. ``--finish``
lets the run end instead and reports its time and that the result was applied.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["measure", "run"]


def measure(image: str | None, width: int, height: int, degradation: str, steps: int, tiles: int,
            finish: bool) -> dict[str, Any]:
    """Run the dock once; a dict of the measured figures."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["RESTORELAB_NO_AUTOSAVE"] = "1"
    from PySide6.QtCore import QSettings

    from restorelab.gui.app import create_app
    from restorelab.gui.bench.stalls import StallClock, pump, synthetic_photo
    from restorelab.gui.main_window import MainWindow

    app = create_app([sys.argv[0]])
    tmp = Path(tempfile.mkdtemp(prefix="restorelab-indi-gui-"))
    if image is None:
        image = str(synthetic_photo(tmp / "photo.npy", width, height))
    win = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    win.resize(1400, 900)
    win.show()

    def until(pred: Any, timeout: float) -> bool:
        t0 = time.monotonic()
        while not pred() and time.monotonic() - t0 < timeout:
            pump(5)
        return bool(pred())

    if not win.open_path(image) or not until(lambda: win.doc is not None and not win.ctx.busy, 300):
        raise RuntimeError(f"{image}: the window could not open it")
    doc = win.doc
    before = doc.image.copy()
    f = win.feature("indi")
    f.degradation.setCurrentIndex(f.degradation.findData(degradation))
    f.steps.setValue(steps)
    clock = StallClock()
    pump(50)
    t0 = time.monotonic()
    clock.restart()
    if not f.run():
        raise RuntimeError(f"the InDI dock refused to run ({degradation!r} model installed?)")
    clock.tick()
    out: dict[str, Any] = {"shape": doc.image.shape}
    total = int(win.ctx.progress_bar.maximum())
    if finish:
        until(lambda: not win.ctx.busy, 3600)
        out["seconds"] = time.monotonic() - t0
        out["applied"] = doc.undo.count() == 1 and not np.array_equal(doc.image, before)
    else:
        until(lambda: win.ctx.jobs.worker is not None and win.ctx.jobs.worker.steps >= tiles, 3600)
        out["seconds_to_events"] = time.monotonic() - t0
        out["bar"] = (int(win.ctx.progress_bar.value()), int(win.ctx.progress_bar.maximum()) or total)
        tc = time.monotonic()
        win.ctx.cancel()
        until(lambda: not win.ctx.busy, 600)
        out["cancel_s"] = time.monotonic() - tc
        out["unchanged"] = bool(np.array_equal(doc.image, before)) and doc.undo.count() == 0
    pump(50)
    out["worst_stall_ms"] = clock.stop()
    doc.undo.setClean()
    win.close()
    app.processEvents()
    return out


def run(args: Any) -> int:
    """Print (and with ``--out`` write) the figures of one :func:`measure`."""
    from restorelab.bench.report import machine_line, write_section

    r = measure(args.image, args.width, args.height, args.degradation, args.steps, args.tiles, args.finish)
    h, w = r["shape"][:2]
    what = f"`{Path(args.image).name}`" if args.image else "a synthetic image"
    cmd = ["restorelab", "bench", "indi-gui", "--degradation", args.degradation, "--steps", str(args.steps)]
    cmd += (["--image", args.image] if args.image
            else ["--width", str(args.width), "--height", str(args.height)])
    cmd += ["--finish"] if args.finish else ["--tiles", str(args.tiles)]
    if args.finish:
        body = (f"ran to the end in {r['seconds']:.1f} s; result applied as one undoable edit: "
                f"{'yes' if r['applied'] else 'no'}")
    else:
        body = (f"{r['bar'][0]} of {r['bar'][1]} tile events after {r['seconds_to_events']:.1f} s; "
                f"cancelled, the window was idle {r['cancel_s']:.2f} s later and the document "
                f"{'unchanged' if r['unchanged'] else 'CHANGED'}")
    text = (f"The InDI dock on {what} ({w}×{h}, {w * h / 1e6:.1f} MP), {args.degradation}, N = {args.steps}: "
            f"{body}; worst GUI-thread stall {r['worst_stall_ms']:.0f} ms.\n\n"
            f"Command: `{' '.join(cmd)}`  \nMachine: {machine_line()}\n")
    print(text)
    if args.out:
        key = "indi-gui-finish" if args.finish else "indi-gui-cancel"
        title = "InDI in the window on a large photo: " + ("a full run" if args.finish else "cancel")
        write_section(args.out, key, text, title)
    return 0
