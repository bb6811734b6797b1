"""Soak: many start/cancel cycles of denoiser and sampler jobs on a worker thread.

Each cycle starts a job (:meth:`Denoiser.job` or :func:`restorelab.prior.sample_job`) on a
``threading.Thread`` that drives it with :func:`restorelab.jobs.run_job`, lets it run for
0–3 progress events (a few cycles run to completion), cancels it with the
:class:`~restorelab.jobs.CancelToken` and joins the thread. Before the timed cycles a
warm-up runs (imports, thread pools, allocator caches); after them the resident set size
(``/proc/self/statm``) and the thread counts (Python threads and OS threads of the process)
are compared with the values after the warm-up. A leaked thread is a worker that did not
end within its join timeout, or a growth of the thread counts.

This is the core half of the soak; the GUI's QThread worker can be soaked with the same
:func:`soak_jobs` by passing its own ``runner``.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from restorelab.jobs import Cancelled, CancelToken, Progress, run_job

__all__ = ["SoakResult", "rss_mb", "os_threads", "soak_jobs", "thread_runner", "pick_denoiser",
           "denoise_factory", "sampler_factory", "soak_table"]

JobFactory = Callable[[int], Generator[Progress, None, Any]]
#: ``runner(job, cancel_after_events) -> (completed, leaked)``
Runner = Callable[[Generator[Progress, None, Any], int], tuple[bool, bool]]


def rss_mb() -> float:
    """Current resident set size of this process in MB (``/proc/self/statm``; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def os_threads() -> int:
    """Number of OS threads of this process (``/proc/self/status``), else Python threads."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return threading.active_count()


def _trim() -> None:
    gc.collect()
    try:  # give freed heap pages back to the OS, so that RSS measures live memory
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def thread_runner(join_timeout_s: float = 30.0) -> Runner:
    """Run a job on a ``threading.Thread`` and cancel it after ``k`` progress events
    (``k < 0``: run to completion). Returns (completed, leaked)."""

    def run(job: Generator[Progress, None, Any], k: int) -> tuple[bool, bool]:
        token = CancelToken()
        seen = threading.Event()
        count = [0]
        result: dict[str, Any] = {}

        def on_progress(_ev: Progress) -> None:
            count[0] += 1
            if k >= 0 and count[0] >= k:
                seen.set()

        def work() -> None:
            try:
                result["value"] = run_job(job, cancel=token, on_progress=on_progress)
            except Cancelled:
                result["cancelled"] = True
            except BaseException as e:  # noqa: BLE001 - reported by the soak
                result["error"] = e
            finally:
                seen.set()

        th = threading.Thread(target=work, name="restorelab-soak-worker", daemon=True)
        if k == 0:
            token.cancel()  # cancelled before its first step
        th.start()
        if k > 0:
            seen.wait(join_timeout_s)
            token.cancel()
        th.join(join_timeout_s)
        if "error" in result:
            raise RuntimeError(f"job failed during the soak: {result['error']!r}") from result["error"]
        return "value" in result, th.is_alive()

    return run


@dataclass
class SoakResult:
    name: str
    cycles: int
    cancelled: int
    completed: int
    leaked_workers: int
    rss_before_mb: float
    rss_after_mb: float
    py_threads_before: int
    py_threads_after: int
    os_threads_before: int
    os_threads_after: int
    wall_s: float

    @property
    def rss_growth_mb(self) -> float:
        return self.rss_after_mb - self.rss_before_mb

    @property
    def ok(self) -> bool:
        return (self.rss_growth_mb < 50 and self.leaked_workers == 0
                and self.py_threads_after <= self.py_threads_before
                and self.os_threads_after <= self.os_threads_before)


def soak_jobs(
    name: str,
    factory: JobFactory,
    cycles: int,
    *,
    runner: Runner | None = None,
    warmup: int = 20,
    seed: int = 0,
    complete_every: int = 50,
    on_progress: Callable[[int, int], Any] | None = None,
) -> SoakResult:
    """``cycles`` start/cancel cycles of ``factory(i)`` jobs; see the module docstring.

    Cycle ``i`` is cancelled after ``k ∈ {0, 1, 2, 3}`` events (random with ``seed``), except
    every ``complete_every``-th cycle, which runs to completion.
    """
    if cycles < 1:
        raise ValueError(f"cycles must be >= 1, got {cycles}")
    run = runner or thread_runner()
    r = np.random.default_rng(seed)
    for i in range(warmup):
        run(factory(-1 - i), -1 if i % 5 == 0 else int(r.integers(0, 4)))
    _trim()
    rss0, py0, os0 = rss_mb(), threading.active_count(), os_threads()
    cancelled = completed = leaked = 0
    t0 = time.perf_counter()
    for i in range(cycles):
        k = -1 if complete_every and (i + 1) % complete_every == 0 else int(r.integers(0, 4))
        done, lk = run(factory(i), k)
        completed += int(done)
        cancelled += int(not done)
        leaked += int(lk)
        if on_progress is not None and (i + 1) % max(1, cycles // 10) == 0:
            on_progress(i + 1, cycles)
    wall = time.perf_counter() - t0
    time.sleep(0.05)  # let finished threads unregister
    _trim()
    return SoakResult(name, cycles, cancelled, completed, leaked, rss0, rss_mb(), py0,
                      threading.active_count(), os0, os_threads(), wall)


def pick_denoiser() -> str:
    """A fast iterative classical denoiser from the registry ("tv" when present)."""
    from restorelab import denoise

    names = denoise.names()
    for pref in ("tv", "perona_malik", "heat", "tikhonov", "wavelet", "nlm"):
        if pref in names:
            return pref
    for cls in denoise.available():
        if cls.iterative and cls.name != "bfcnn":
            return cls.name
    if not names:
        raise RuntimeError("no denoiser is registered")
    return names[0]


def denoise_factory(name: str | None = None, size: int = 64) -> tuple[str, JobFactory]:
    """(label, factory) for jobs of the denoiser ``name`` on a noisy ``size``² image."""
    from restorelab import denoise

    name = name or pick_denoiser()
    den = denoise.get(name, device="cpu")
    rng = np.random.default_rng(1)
    y = np.clip(np.linspace(0, 1, size * size, dtype=np.float32).reshape(size, size)
                + rng.normal(0, 0.1, (size, size)).astype(np.float32), 0, 1)

    def factory(i: int) -> Generator[Progress, None, Any]:
        return den.job(y, 0.1)

    return f"denoise:{name}", factory


def sampler_factory(
    denoiser: str | None = None, size: int = 16, max_iter: int = 20
) -> tuple[str, JobFactory]:
    """(label, factory) for Algorithm-1 sampler jobs (``restorelab.prior.sample_job``).

    Raises ImportError when the sampler has not landed.
    """
    try:
        from restorelab.prior import sample_job  # type: ignore[attr-defined]
    except ImportError:
        from restorelab.prior.sampler import sample_job
    from restorelab import denoise

    name = denoiser or pick_denoiser()
    den = denoise.get(name, device="cpu")

    def factory(i: int) -> Generator[Progress, None, Any]:
        return sample_job(den, shape=(size, size), seed=abs(i), max_iter=max_iter, device="cpu",
                          preview_every=5)

    return f"sampler:{name}", factory


def soak_table(results: list[SoakResult]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows for :func:`restorelab.bench.report.markdown_table`."""
    header = ["job", "cycles", "cancelled", "completed", "RSS before (MB)", "RSS after (MB)", "growth (MB)",
              "Python threads before→after", "OS threads before→after", "leaked workers", "time (s)", "pass"]
    rows = [[r.name, r.cycles, r.cancelled, r.completed, f"{r.rss_before_mb:.1f}", f"{r.rss_after_mb:.1f}",
             f"{r.rss_growth_mb:+.1f}", f"{r.py_threads_before}→{r.py_threads_after}",
             f"{r.os_threads_before}→{r.os_threads_after}", r.leaked_workers, f"{r.wall_s:.1f}",
             "yes" if r.ok else "NO"] for r in results]
    return header, rows
