"""Brush-stamp and view benchmark on a large image (default 6000×4000 RGB, 24 MP).

``python -m restorelab.gui.bench.paint [--width 6000 --height 4000 --radius 12 40 120]``

In the real main window (offscreen), a stroke of stamps is painted through the brush tool
handler; each stamp is timed on the GUI thread twice: the mask update alone (numpy write of
the stamp, tile backup for undo, dirty-rectangle invalidation) and the stamp *plus* the
repaint Qt then does (``processEvents``) at fit-to-window and 1:1 zoom. Also times a
repaint after zooming and panning the 24 MP canvas, and the undo of the stroke.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def run(
    width: int = 6000, height: int = 4000, radii: tuple[float, ...] = (12, 40, 120), stamps: int = 120
) -> list[dict]:
    """Return one row per (radius, zoom) with median/p95/max stamp times in ms."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    from PySide6.QtCore import QSettings, Qt

    from restorelab.gui.app import create_app
    from restorelab.gui.document import Document
    from restorelab.gui.main_window import MainWindow

    app = create_app([sys.argv[0]])
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "restorelab-bench.ini")
    os.environ["RESTORELAB_NO_AUTOSAVE"] = "1"  # headless: no recovery question, no autosave files
    win = MainWindow(QSettings(tmp, QSettings.Format.IniFormat))
    win.resize(1600, 1000)
    win.show()
    rng = np.random.default_rng(0)
    img = rng.random((height, width, 3), dtype=np.float32)
    t0 = time.perf_counter()
    win.set_document(Document(img))
    app.processEvents()
    open_s = time.perf_counter() - t0
    win.ctx.set_tool("brush")
    h = win.canvas.handler
    mods = Qt.KeyboardModifier.NoModifier
    rows = []
    for zoom in ("fit", "1:1"):
        win.canvas.fit()
        if zoom == "1:1":
            win.canvas.one_to_one()
        app.processEvents()
        vr = win.canvas.visible_rect()
        for r in radii:
            win._set_radius(r, True)  # noqa: SLF001
            y0, x0, y1, x1 = vr
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            span = min(x1 - x0, y1 - y0) * 0.35
            ang = np.linspace(0, 2 * np.pi, stamps)
            pts = [(cx + span * np.cos(a), cy + span * 0.6 * np.sin(2 * a)) for a in ang]
            only, total = [], []
            h.press(*pts[0], mods)
            app.processEvents()
            for x, y in pts[1:]:
                a = time.perf_counter()
                h.move(x, y, mods)
                b = time.perf_counter()
                app.processEvents()  # Qt repaints the invalidated rectangle
                c = time.perf_counter()
                only.append((b - a) * 1e3)
                total.append((c - a) * 1e3)
            h.release(*pts[-1], mods)
            a = time.perf_counter()
            win.doc.undo.undo()
            app.processEvents()
            undo_ms = (time.perf_counter() - a) * 1e3
            rows.append(
                {
                    "zoom": zoom,
                    "radius": r,
                    "stamp_med": float(np.median(only)),
                    "stamp_p95": float(np.percentile(only, 95)),
                    "stamp_max": float(np.max(only)),
                    "with_repaint_med": float(np.median(total)),
                    "with_repaint_p95": float(np.percentile(total, 95)),
                    "with_repaint_max": float(np.max(total)),
                    "undo_ms": undo_ms,
                }
            )
    # view: zoom / pan repaint of the 24 MP canvas
    view = []
    win.canvas.fit()
    app.processEvents()
    for i in range(20):
        a = time.perf_counter()
        if i % 2:
            win.canvas.zoom_by(1.25)
        else:
            win.canvas.vb.translateBy(x=37, y=21)
        win.canvas.viewport().repaint()
        app.processEvents()
        view.append((time.perf_counter() - a) * 1e3)
    rows.append({"view_med": float(np.median(view)), "view_max": float(np.max(view)), "open_s": open_s})
    win.doc.undo.setClean()
    win.shutdown()
    return rows


def report(rows: list[dict], width: int, height: int) -> str:
    """The Markdown section (table + one line on the view)."""
    from restorelab.bench.report import machine_line, markdown_table

    body = [
        [
            r["zoom"],
            f"{r['radius']:g}",
            f"{r['stamp_med']:.2f}",
            f"{r['stamp_p95']:.2f}",
            f"{r['stamp_max']:.2f}",
            f"{r['with_repaint_med']:.2f}",
            f"{r['with_repaint_p95']:.2f}",
            f"{r['with_repaint_max']:.2f}",
            f"{r['undo_ms']:.1f}",
        ]
        for r in rows[:-1]
    ]
    head = [
        "zoom",
        "radius px",
        "stamp median ms",
        "stamp p95",
        "stamp max",
        "+ repaint median",
        "+ repaint p95",
        "+ repaint max",
        "undo stroke ms",
    ]
    v = rows[-1]
    return (
        f"Brush stamps on a {width}×{height} RGB image, on the GUI thread of the real window (offscreen): "
        "the mask write + undo tile backup + dirty-rectangle invalidation, then with the repaint Qt does.\n\n"
        + markdown_table(head, body)
        + "\n\nZoom/pan repaint of the whole canvas: "
        f"median {v['view_med']:.1f} ms, max {v['view_max']:.1f} ms; "
        f"opening the {width}×{height} document took {v['open_s']:.2f} s.\n\n"
        f"`python -m restorelab.gui.bench.paint` — {machine_line()}\n"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=6000)
    ap.add_argument("--height", type=int, default=4000)
    ap.add_argument("--radius", type=float, nargs="+", default=[12, 40, 120])
    ap.add_argument("--stamps", type=int, default=120)
    ap.add_argument(
        "--out", default="BENCHMARKS.md", help="markdown file whose gui-paint section is replaced"
    )
    ap.add_argument("--no-write", action="store_true", help="only print")
    a = ap.parse_args(argv)
    rows = run(a.width, a.height, tuple(a.radius), a.stamps)
    md = report(rows, a.width, a.height)
    print(md)
    if not a.no_write:
        from restorelab.bench.report import write_section

        write_section(a.out, "gui-paint", md, "GUI: brush stamps and view on a 24 MP image")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
