"""Soak of start/cancel cycles: no leaked worker thread, bounded memory, leak detection works."""

from __future__ import annotations

import threading

from restorelab.bench.soak import denoise_factory, soak_jobs, thread_runner
from restorelab.jobs import Progress


def test_denoiser_start_cancel_cycles_leak_nothing():
    label, fac = denoise_factory(size=32)
    r = soak_jobs(label, fac, 40, warmup=5, complete_every=10)
    assert r.cycles == 40 and r.completed >= 4 and r.cancelled >= 1
    assert r.leaked_workers == 0
    assert r.py_threads_after <= r.py_threads_before
    assert r.rss_growth_mb < 50
    assert r.ok


def test_a_worker_stuck_in_a_step_is_reported_as_leaked():
    release = threading.Event()

    def stuck_job():
        yield Progress(0, 2)
        release.wait(5)  # one step that ignores cancellation for a while
        yield Progress(1, 2)
        return 1

    run = thread_runner(join_timeout_s=0.2)
    done, leaked = run(stuck_job(), 1)
    assert leaked and not done
    release.set()
    done, leaked = run(stuck_job(), -1)  # released: runs to completion
    assert done and not leaked
