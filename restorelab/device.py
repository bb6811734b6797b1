"""Device selection (``auto`` picks CUDA when present, else CPU) and the CPU thread policy
of torch work.

Thread policy (:func:`torch_threads_for_work`): torch's OpenMP threads spin and wait for
each other at every operation, so on a machine where other processes keep cores busy a
thread per core makes each step wait for a descheduled thread. ``python -m
restorelab.bench.threads`` (60 iterations of Algorithm 2 on a 32² inpainting, the learned
gray denoiser, 2 cores shared with other work, 1-minute load ≈ 11) measured 2.65 s with one
thread against 26.0 s with two, and with one more CPU-bound process 6.2 s against 62.6 s.
So torch gets the *free* cores: the cores this process may use less the tasks other
processes are running when the work starts, at least 1; on an idle machine that is every
core, torch's own default.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["resolve_device", "device_name", "cuda_available", "torch_threads_for_work", "threads_for_work"]


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _busy_elsewhere() -> float | None:
    """Runnable tasks of other processes right now: the median over a few samples of the
    running-task count in ``/proc/loadavg``, less this (running) thread. None without /proc."""
    import statistics
    import time

    counts = []
    for _ in range(15):
        try:
            with open("/proc/loadavg", encoding="ascii") as f:
                counts.append(int(f.read().split()[3].split("/")[0]))
        except (OSError, ValueError, IndexError):
            return None
        time.sleep(0.002)
    return max(0.0, statistics.median(counts) - 1)


def torch_threads_for_work(*, cores: int | None = None, busy: float | None = None) -> int:
    """Threads torch should use for CPU work now: the free cores, at least 1.

    ``cores`` defaults to the cores this process may run on; ``busy`` to the tasks other
    processes are running now (``/proc/loadavg``'s running count less this thread; where
    there is no /proc, the 1-minute load average). An instantaneous count, not the load
    average, so that this process's own previous work does not count against it.
    ``RESTORELAB_THREADS`` (a positive integer) overrides the policy.
    """
    env = os.environ.get("RESTORELAB_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"RESTORELAB_THREADS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"RESTORELAB_THREADS must be a positive integer, got {env!r}")
        return n
    c = _usable_cores() if cores is None else int(cores)
    if busy is None:
        busy = _busy_elsewhere()
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):  # pragma: no cover - not POSIX
            busy = 0.0
    return max(1, min(c, c - int(round(max(0.0, float(busy))))))


@contextlib.contextmanager
def threads_for_work(n: int | None = None) -> Iterator[int]:
    """Run a block with torch's intra-op threads set to ``n``, restoring the previous count
    afterwards. By default ``n`` is :func:`torch_threads_for_work`, but never more than
    torch is set to use (``torch.set_num_threads`` by the application or a test stays an
    upper bound)."""
    import torch

    before = torch.get_num_threads()
    k = min(before, torch_threads_for_work()) if n is None else max(1, int(n))
    if k != before:
        torch.set_num_threads(k)
    try:
        yield k
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device: Any = "auto") -> Any:
    """Return a ``torch.device`` for ``"auto" | "cpu" | "cuda" | "cuda:N"`` (or a device).

    Asking for CUDA where none is present raises ``RuntimeError`` with a clear message.
    """
    import torch

    if isinstance(device, torch.device):
        return device
    name = str(device or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("CUDA was requested but no CUDA device is available; use --device cpu or auto")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {device!r}; expected auto, cpu or cuda")


def device_name(device: Any = "auto") -> str:
    """Human-readable device name (GPU model or 'CPU')."""
    import torch

    d = resolve_device(device)
    if d.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(d)}"
    return "CPU"
