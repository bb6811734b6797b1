"""Soak the GUI worker: start/cancel cycles of a denoiser job and a sampler job.

``python -m restorelab.gui.bench.soak [--denoise 1000] [--sample 200] [--denoiser tv] [--size 32]``

Each cycle starts a core job through the real :class:`~restorelab.gui.runner.JobController`
(a ``QThread`` per job, queued signals, offscreen ``QApplication``), waits for its first
progress batch on the GUI thread, cancels it and waits until the controller reports the
end. After a warm-up (torch's thread pools, the registry, Qt's first thread), resident
memory (``VmRSS``) and the thread counts (OS threads from ``/proc``, Python threads,
live ``JobWorker`` objects) are taken before and after the cycles. Prints a Markdown table
and writes the ``gui-soak`` section of BENCHMARKS.md (issue 7: growth under 50 MB, no leaked
threads).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any


def _status(key: str) -> int:
    """A number from /proc/self/status (``VmRSS`` in kB, ``Threads``); -1 where unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def rss_mb() -> float:
    """Resident set size of this process in MB (``VmRSS``; ``ru_maxrss`` elsewhere)."""
    kb = _status("VmRSS")
    if kb < 0:  # pragma: no cover - not Linux
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0


def snapshot() -> dict[str, float]:
    """Memory and thread counts after a full garbage collection."""
    import warnings

    from restorelab.gui.runner import JobWorker

    gc.collect()
    with warnings.catch_warnings():  # isinstance on some torch module objects warns
        warnings.simplefilter("ignore")
        workers = sum(1 for o in gc.get_objects() if type(o) is JobWorker)
    return {
        "rss_mb": rss_mb(),
        "os_threads": _status("Threads"),
        "py_threads": threading.active_count(),
        "job_workers": workers,
    }


def run_cycles(
    app: Any, factory: Callable[[], Any], n: int, *, first_progress_timeout: float = 5.0
) -> dict[str, float]:
    """``n`` start → first progress → cancel → ended cycles through a ``JobController``."""
    from restorelab.gui.runner import JobController

    ctl = JobController()
    outcomes: list[str] = []
    ctl.finished.connect(lambda outcome, _title: outcomes.append(outcome))
    got = [0]
    errors: list[str] = []
    t0 = time.perf_counter()
    for _ in range(n):
        got[0] = 0
        outcomes_before = len(outcomes)
        ok = ctl.start("soak", factory, lambda _r: None, on_progress=lambda b: got.__setitem__(0, 1),
                       on_error=lambda msg, _d, _e: errors.append(msg))
        if not ok:
            raise RuntimeError("the controller refused a job: the previous one did not end")
        deadline = time.monotonic() + first_progress_timeout
        while not got[0] and len(outcomes) == outcomes_before and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.0005)
        ctl.cancel()
        deadline = time.monotonic() + 30.0
        while ctl.busy and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.0005)
        if ctl.busy:
            raise RuntimeError("a cancelled job did not end within 30 s")
    app.processEvents()
    dt = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} of {n} jobs failed; first error: {errors[0]}")
    ctl.deleteLater()
    app.processEvents()
    return {
        "cycles": n,
        "cancelled": outcomes.count("cancelled"),
        "completed": outcomes.count("done"),
        "failed": outcomes.count("failed"),
        "seconds": dt,
        "ms_per_cycle": 1000.0 * dt / max(n, 1),
    }


def soak(n_denoise: int, n_sample: int, *, denoiser: str = "tv", size: int = 32,
         warmup: int = 20) -> dict[str, Any]:
    """Run the soak; returns the snapshots and per-job cycle statistics."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    from restorelab import denoise
    from restorelab.prior.sampler import sample_job

    app = QCoreApplication.instance() or QApplication([sys.argv[0]])
    rng = np.random.default_rng(0)
    y = rng.random((size, size, 3), dtype=np.float32)
    den = denoise.get(denoiser, device="cpu")
    # many steps so that a cycle is always cancelled mid-run (tv/perona_malik are iterative)
    iterative = getattr(type(den), "iterative", False)
    long_run: dict[str, Any] = {}
    for p in getattr(den, "params", ()):
        if p.name in ("max_iter", "iterations", "n_iter") and p.hi is not None:
            long_run[p.name] = p.kind(p.hi)
        elif p.name == "tol" and p.lo is not None:
            long_run[p.name] = p.kind(p.lo)
    den_job = den.with_params(**long_run)

    def denoise_factory() -> Any:
        return den_job.job(y, 0.1)

    sampler_den = denoise.get(denoiser, device="cpu")

    def sample_factory() -> Any:
        return sample_job(sampler_den, shape=(size, size), channels=1, seed=1, sigma_L=1e-4,
                          max_iter=100000, patience=100000, preview_every=5, device="cpu")

    run_cycles(app, denoise_factory, warmup)
    run_cycles(app, sample_factory, max(1, warmup // 4))
    before = snapshot()
    d = run_cycles(app, denoise_factory, n_denoise)
    mid = snapshot()
    s = run_cycles(app, sample_factory, n_sample)
    after = snapshot()
    return {"before": before, "mid": mid, "after": after, "denoise": d, "sample": s,
            "denoiser": denoiser, "iterative": iterative, "size": size}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoise", type=int, default=1000, help="start/cancel cycles of the denoiser job")
    ap.add_argument("--sample", type=int, default=200, help="start/cancel cycles of the sampler job")
    ap.add_argument("--denoiser", default="tv",
                    help="registered denoiser (an iterative one is cancelled mid-run)")
    ap.add_argument("--size", type=int, default=32, help="image side in pixels")
    ap.add_argument("--out", default="BENCHMARKS.md", help="markdown file whose gui-soak section is replaced")
    ap.add_argument("--no-write", action="store_true", help="only print")
    a = ap.parse_args(argv)
    from restorelab.bench.report import machine_line, markdown_table

    r = soak(a.denoise, a.sample, denoiser=a.denoiser, size=a.size)
    b, m, e = r["before"], r["mid"], r["after"]
    head = ["job", "cycles", "cancelled", "completed", "failed", "ms/cycle",
            "RSS before MB", "RSS after MB", "growth MB", "OS threads before→after",
            "Python threads before→after", "JobWorker objects after"]
    rows = []
    for name, st, s0, s1 in (("denoise", r["denoise"], b, m), ("sample", r["sample"], m, e)):
        rows.append([
            f"{name} ({r['denoiser']}, {r['size']}²)", st["cycles"], st["cancelled"], st["completed"],
            st["failed"], f"{st['ms_per_cycle']:.1f}", f"{s0['rss_mb']:.1f}", f"{s1['rss_mb']:.1f}",
            f"{s1['rss_mb'] - s0['rss_mb']:+.1f}", f"{s0['os_threads']}→{s1['os_threads']}",
            f"{s0['py_threads']}→{s1['py_threads']}", s1["job_workers"],
        ])
    total = e["rss_mb"] - b["rss_mb"]
    leaked = (e["os_threads"] - b["os_threads"], e["py_threads"] - b["py_threads"])
    md = (
        "Start → first progress → cancel cycles through the GUI worker (`JobController`/`JobWorker`, one "
        "QThread per job, offscreen), after a warm-up; memory is `VmRSS` after `gc.collect()`.\n\n"
        + markdown_table(head, rows)
        + f"\n\nTotal resident growth {total:+.1f} MB; "
        f"threads leaked (OS, Python): {leaked[0]}, {leaked[1]}.\n\n"
        f"`python -m restorelab.gui.bench.soak --denoise {a.denoise} --sample {a.sample} "
        f"--denoiser {a.denoiser} --size {a.size}` — {machine_line()}\n"
    )
    print(md)
    if not a.no_write:
        from restorelab.bench.report import write_section

        write_section(a.out, "gui-soak", md, "GUI: worker soak (start/cancel cycles)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
