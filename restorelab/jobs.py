"""The job protocol: long work is a generator of :class:`Progress` events.

A job is ``Generator[Progress, None, Result]``: it yields after each step (iteration,
tile, image) and returns its result. Consumers (the GUI worker, the CLI progress bar,
tests) drive it with :func:`run_job`; cancelling means no longer advancing it, so a job is
cancelled between two steps and its ``finally`` blocks run (``generator.close()``).
Results are only ever handed over on completion; a cancelled job returns nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["Progress", "Job", "Cancelled", "CancelToken", "run_job", "single_step"]

R = TypeVar("R")


@dataclass
class Progress:
    """One progress event. ``sigma`` is σ_t (sampler) on the [0, 1] scale, ``h`` the step
    size h_t, ``preview`` an optional image (H, W[, C]) float32 for display, ``data`` any
    extra plain values (e.g. energy, residual)."""

    step: int
    total: int | None = None
    sigma: float | None = None
    h: float | None = None
    preview: Any = None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, max(0.0, self.step / self.total))


Job = Generator[Progress, None, R]


class Cancelled(Exception):
    """Raised by :func:`run_job` when its cancel token is set; nothing is returned."""


class CancelToken:
    """A thread-safe flag checked between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")


def run_job(
    job: Generator[Progress, None, R],
    *,
    cancel: CancelToken | None = None,
    on_progress: Callable[[Progress], Any] | None = None,
) -> R:
    """Drive ``job`` to the end and return its result.

    Between two steps, a set ``cancel`` token closes the generator and raises
    :class:`Cancelled`. ``on_progress`` receives every event.
    """
    try:
        while True:
            if cancel is not None and cancel.cancelled:
                raise Cancelled("cancelled")
            try:
                ev = next(job)
            except StopIteration as stop:
                return stop.value
            if on_progress is not None:
                on_progress(ev)
    finally:
        job.close()


def single_step(fn: Callable[[], R], message: str = "") -> Generator[Progress, None, R]:
    """A job of one step, for fast non-iterative methods."""
    yield Progress(0, 1, message=message)
    out = fn()
    yield Progress(1, 1, message=message)
    return out
