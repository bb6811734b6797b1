"""Take the documentation screenshots from the real window.

``python -m restorelab.gui.screenshots [OUT_DIR] [--denoiser NAME] [--sampler-denoiser NAME]``
(run it under a real X server for real fonts: ``xvfb-run -s "-screen 0 1600x1000x24"
python -m restorelab.gui.screenshots docs/screenshots``). Each scenario drives the window
like a user and saves ``QWidget.grab()`` of the main window:

- ``restore.png`` — the noisy sample denoised, before/after split line in the middle;
- ``clone.png`` — a seamless clone being dragged (live result), clone panel raised;
- ``inpaint.png`` — Algorithm 2 filling a painted hole: σ_t/h_t plot, uncertainty map;
- ``manifold.png`` — the 2-D manifold demo with trajectories over the density;
- ``multiscale.png`` — the multiscale layers with raised fine-scale gains;
- ``indi.png`` — a JPEG (quality 15) of the sample restored by InDI in 5 steps, split view;
- ``analysis.png`` — the Analysis dock: a pixel's adaptive filter and the basis of the view.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="docs/screenshots")
    ap.add_argument("--denoiser", default=None, help="method for restore.png (default: bfcnn, else nlm)")
    ap.add_argument(
        "--sampler-denoiser", default=None, help="denoiser of the sampler (default: bfcnn, else wavelet)"
    )
    ap.add_argument("--only", nargs="*", default=None)
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    import numpy as np
    from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer

    from restorelab import denoise
    from restorelab.gui import dialogs
    from restorelab.gui.app import create_app
    from restorelab.gui.main_window import MainWindow
    from restorelab.resources import sample_path

    app = create_app([sys.argv[0]])  # noqa: F841 - keeps the QApplication alive

    def _error(parent: object, title: str, message: str, details: str = "") -> None:
        print(f"error: {title}: {message}\n{details}", file=sys.stderr)

    dialogs.error = _error
    dialogs.save_discard_cancel = lambda *args: "discard"  # each scenario opens a fresh image
    dialogs.info = lambda parent, title, message: print(f"info: {title}: {message}", file=sys.stderr)
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "restorelab-shots.ini")
    if os.path.exists(tmp):
        os.remove(tmp)
    os.environ["RESTORELAB_NO_AUTOSAVE"] = "1"  # headless: no recovery question, no autosave files
    win = MainWindow(QSettings(tmp, QSettings.Format.IniFormat))
    win.resize(1600, 1000)
    win.show()

    def pump(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def wait_job(timeout: float = 600) -> None:
        t_end = time.monotonic() + timeout
        while win.ctx.jobs.busy and time.monotonic() < t_end:
            pump(50)
        pump(300)

    def shot(name: str) -> None:
        pump(400)
        p = out / name
        win.grab().save(str(p))
        print(f"wrote {p}", flush=True)

    def open_(path: str) -> None:
        if win.doc is not None:
            win.doc.undo.setClean()  # a headless run has no one to ask about unsaved changes
        win.open_path(path)
        wait_job()

    pump(500)
    names = denoise.names()

    def have_bfcnn(channels: int) -> bool:
        from restorelab.resources import models_dir

        return (
            Path(models_dir()) / ("bfcnn_color.safetensors" if channels == 3 else "bfcnn_gray.safetensors")
        ).exists()

    want = set(a.only) if a.only else {
        "restore", "clone", "inpaint", "manifold", "multiscale", "indi", "analysis"}

    if "restore" in want:
        open_(str(sample_path()))
        name = a.denoiser or ("bfcnn" if "bfcnn" in names and have_bfcnn(3) else "nlm")
        win.feature("denoise").panel.select(name)
        win.feature("denoise").panel.live.setChecked(False)
        win.feature("denoise").run()
        wait_job()
        win.canvas.fit()
        win.a_compare.setChecked(True)
        win.canvas.set_compare(True)
        win.canvas.split_line.setValue(win.doc.shape[1] * 0.5)
        win.docks["denoise"].raise_()
        shot("restore.png")
        win.a_compare.setChecked(False)
        win.canvas.set_compare(False)

    if "clone" in want:
        open_(str(sample_path("astronaut.png")))
        win.docks["clone"].show()
        win.docks["clone"].raise_()
        win.ctx.set_tool("clone")
        # the mission patch on the suit, dragged to the other side of the suit
        win.feature("clone").set_ellipse(127, 343, 84, 76)
        win.feature("clone").begin((0, 0))
        for k in range(1, 11):
            win.feature("clone").move_to((int(80 * k / 10), int(140 * k / 10)))
            pump(60)
        pump(1500)
        win.canvas.vb.setRange(xRange=(60, 460), yRange=(260, 512))
        shot("clone.png")
        win.feature("clone").commit()
        wait_job()

    if "inpaint" in want:
        open_(str(sample_path("camera.png")))
        doc = win.doc
        # a hole over the camera, painted with the brush tool's stroke logic
        from restorelab.gui.mask import Stroke

        st = Stroke(doc, 10, 0.8, False)
        for t in np.linspace(0, 1, 30):
            st.add(250 + 40 * t, 120 + 25 * np.sin(6 * t))
        cmd = st.finish()
        if cmd is not None:
            doc.push(cmd)
        win.canvas.overlay.update_rect(None)
        sv = win.feature("sampler")
        sv.task.setCurrentIndex(sv.task.findData("inpaint"))
        sname = a.sampler_denoiser or ("bfcnn" if "bfcnn" in names and have_bfcnn(1) else "wavelet")
        sv.denoiser.setCurrentIndex(sv.denoiser.findData(sname))
        rows = sv.form.rows
        if "mode" in rows:
            rows["mode"].set("sample")  # K samples: mean and the uncertainty map
        rows["samples"].set(4)
        if sname != "bfcnn":
            rows["max_iter"].set(400)
        sv.run()
        wait_job()
        i = sv.show_what.findText("std (uncertainty map)")
        sv.show_what.setCurrentIndex(i)
        win.docks["sampler"].raise_()
        win.canvas.vb.setRange(xRange=(150, 400), yRange=(40, 260))
        sv.apply_button.setEnabled(True)
        sv.show_what.setCurrentIndex(sv.show_what.findText("mean of the samples"))
        sv.apply_result()
        sv.show_what.setCurrentIndex(i)
        win.a_show_mask.setChecked(False)
        win.canvas.overlay.setVisible(False)  # show the filled hole, not the painted mask
        win.docks["mask"].raise_()
        shot("inpaint.png")
        win.a_show_mask.setChecked(True)
        win.canvas.overlay.setVisible(True)

    if "manifold" in want:
        if win.doc is None:
            open_(str(sample_path()))
        win.docks["manifold"].show()
        win.docks["manifold"].raise_()
        win.resizeDocks([win.docks["manifold"]], [520], Qt.Orientation.Vertical)
        win.feature("manifold").run()
        wait_job()
        shot("manifold.png")
        win.resizeDocks([win.docks["manifold"]], [250], Qt.Orientation.Vertical)

    if "multiscale" in want:
        open_(str(sample_path("coffee.png")))
        mp = win.feature("multiscale")
        win.docks["multiscale"].raise_()
        i = mp.denoiser.findData("gaussian")
        if i >= 0:
            mp.denoiser.setCurrentIndex(i)
        mp.run()
        wait_job()
        if mp.sliders:
            mp.sliders[0].setValue(2.5)
            if len(mp.sliders) > 1:
                mp.sliders[1].setValue(1.8)
        pump(1500)
        shot("multiscale.png")

    if "indi" in want:
        import tempfile

        from PIL import Image

        # a strongly compressed copy of the sample (JPEG quality 15), restored by InDI
        jpg = Path(tempfile.mkdtemp()) / "astronaut_q15.jpg"
        Image.open(sample_path("astronaut.png")).convert("RGB").save(jpg, quality=15)
        open_(str(jpg))
        f = win.feature("indi")
        f.degradation.setCurrentIndex(f.degradation.findData("jpeg"))
        f.steps.setValue(5)
        win.docks["indi"].show()
        win.docks["indi"].raise_()
        f.run()
        wait_job()
        win.canvas.vb.setRange(xRange=(120, 380), yRange=(40, 260))
        win.a_compare.setChecked(True)
        win.canvas.set_compare(True)
        win.canvas.split_line.setValue(250)
        shot("indi.png")
        win.a_compare.setChecked(False)
        win.canvas.set_compare(False)

    if "analysis" in want:
        open_(str(sample_path()))  # the noisy sample: the filters spread where the network averages
        f = win.feature("analysis")
        win.docks["analysis"].show()
        win.docks["analysis"].raise_()
        win.resizeDocks([win.docks["analysis"]], [430], Qt.Orientation.Vertical)
        i = f.method.findData("bfcnn" if "bfcnn" in names and have_bfcnn(1) else "nlm")
        f.method.setCurrentIndex(max(i, 0))
        win.ctx.set_tool("probe")
        win.canvas.handler.click(300.5, 110.5, Qt.KeyboardModifier.NoModifier)
        for _ in range(600):
            pump(100)
            if f.filter_item.image is not None and not win.ctx.busy:
                break
        win.canvas.vb.setRange(xRange=(200, 400), yRange=(40, 200))
        pump(300)
        f.compute_basis()
        wait_job()
        f.sweep()  # tr J against σ (Hutchinson estimate with 8 probes)
        wait_job()
        shot("analysis.png")
        win.resizeDocks([win.docks["analysis"]], [250], Qt.Orientation.Vertical)

    if win.doc is not None:
        win.doc.undo.setClean()
    win.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
