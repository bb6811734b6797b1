"""Running the core's generator jobs off the GUI thread.

:class:`JobWorker` is a ``QThread`` that drives one job (``Generator[Progress, None, R]``)
and reports to the GUI thread through queued signals:

- ``progress(list[Progress])`` — *batches*, at most ``rate`` per second (default 10):
  every σ_t/h_t point reaches the plot, but only the newest preview image of a batch is
  kept, and a new batch waits until the GUI has taken the previous one, so a fast job can
  never flood the event loop;
- ``done(result)`` on completion only — a cancelled or failed job hands over nothing;
- ``failed(message, details)``, ``cancelled()``.

Cancelling sets the :class:`~restorelab.jobs.CancelToken`; the job is closed between two
steps (its ``finally`` blocks run). :class:`JobController` allows one job at a time per
document (a second request is refused with a message, not queued).
:class:`LatestRunner` computes live previews: a new request abandons the previous one.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from restorelab.jobs import CancelToken, Progress
from restorelab.safety import is_oom

JobFactory = Callable[[], Generator[Progress, None, Any]]


def describe_error(exc: BaseException) -> str:
    """One readable line for a message box; running out of GPU memory gets advice."""
    msg = str(exc) or type(exc).__name__
    if is_oom(exc):
        return "The GPU ran out of memory. " + msg
    return f"{type(exc).__name__}: {msg}" if not isinstance(exc, ValueError | OSError) else msg


def lower_thread_priority(nice: int = 4) -> None:
    """Give the calling (worker) thread a higher nice value so that, on a busy machine, the
    scheduler prefers the GUI thread (Linux: per-thread ``setpriority``; elsewhere a no-op)."""
    try:
        if sys.platform.startswith("linux"):
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except (OSError, AttributeError):  # pragma: no cover - not permitted / not supported
        pass


class JobWorker(QThread):
    """Drives one job in its own thread."""

    progress = Signal(object)
    done = Signal(object)
    failed = Signal(str, str, object)
    cancelled = Signal()

    def __init__(self, factory: JobFactory, *, rate: float = 10.0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._factory = factory
        self.token = CancelToken()
        self._interval = 1.0 / max(rate, 0.1)
        self._lock = threading.Lock()
        self._pending: list[Progress] = []
        self._in_flight = False
        self.steps = 0
        self.outcome: str | None = None

    def cancel(self) -> None:
        self.token.cancel()

    # called in the GUI thread by the consumer once it has handled a batch
    def ack(self) -> None:
        with self._lock:
            self._in_flight = False

    def _flush(self, force: bool = False) -> None:
        with self._lock:
            if not self._pending or (self._in_flight and not force):
                return
            batch = self._pending
            self._pending = []
            self._in_flight = True
        # keep only the newest preview of the batch (images are big, points are not)
        seen = False
        for ev in reversed(batch):
            if ev.preview is not None:
                if seen:
                    ev.preview = None
                seen = True
        self.progress.emit(batch)

    def run(self) -> None:  # noqa: D401 - QThread entry
        lower_thread_priority()
        job = None
        try:
            job = self._factory()
            last = 0.0
            while True:
                if self.token.cancelled:
                    self.outcome = "cancelled"
                    job.close()
                    self.cancelled.emit()
                    return
                try:
                    ev = next(job)
                except StopIteration as stop:
                    self._flush(force=True)
                    self.outcome = "done"
                    self.done.emit(stop.value)
                    return
                self.steps += 1
                if isinstance(ev, Progress):
                    with self._lock:
                        self._pending.append(ev)
                now = time.monotonic()
                if now - last >= self._interval:
                    self._flush()
                    last = now
        except Exception as e:  # noqa: BLE001 - reported to the GUI, never a crash
            self.outcome = "failed"
            if job is not None:
                try:
                    job.close()
                except Exception:  # noqa: BLE001
                    pass
            self.failed.emit(describe_error(e), traceback.format_exc(), e)


class JobController(QObject):
    """One job at a time (per document): start, cancel, and route the outcome."""

    started = Signal(str)
    progress = Signal(object)
    finished = Signal(str, str)  # outcome ("done"|"cancelled"|"failed"), title

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker: JobWorker | None = None
        self.title = ""
        self._on_done: Callable[[Any], None] | None = None
        self._on_progress: Callable[[list[Progress]], None] | None = None
        self._on_error: Callable[[str, str, BaseException], None] | None = None
        self._on_end: Callable[[str], None] | None = None

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def start(
        self,
        title: str,
        factory: JobFactory,
        on_done: Callable[[Any], None],
        *,
        on_progress: Callable[[list[Progress]], None] | None = None,
        on_error: Callable[[str, str, BaseException], None] | None = None,
        on_end: Callable[[str], None] | None = None,
        rate: float = 10.0,
    ) -> bool:
        """Start a job; returns False (nothing started) when one is already running.

        ``on_end(outcome)`` runs after every outcome ("done", "cancelled", "failed"), e.g.
        to take a live preview off the canvas when a run is cancelled."""
        if self.worker is not None:
            return False
        w = JobWorker(factory, rate=rate)
        self.worker, self.title = w, title
        self._on_done, self._on_progress, self._on_error = on_done, on_progress, on_error
        self._on_end = on_end
        w.progress.connect(self._progress)
        w.done.connect(self._done)
        w.failed.connect(self._failed)
        w.cancelled.connect(self._cancelled)
        self.started.emit(title)
        w.start()
        return True

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def wait(self, ms: int = 5000) -> bool:
        return self.worker.wait(ms) if self.worker is not None else True

    def _progress(self, batch: list[Progress]) -> None:
        w = self.sender()
        try:
            if self._on_progress is not None:
                self._on_progress(batch)
            self.progress.emit(batch)
        finally:
            if isinstance(w, JobWorker):
                w.ack()

    def _end(self, outcome: str) -> None:
        w = self.worker
        self.worker = None
        if w is not None:
            w.wait(2000)
            w.deleteLater()
        end, self._on_end = self._on_end, None
        if end is not None:
            end(outcome)
        self.finished.emit(outcome, self.title)

    def _done(self, result: Any) -> None:
        cb = self._on_done
        try:
            if cb is not None:
                cb(result)
        except Exception as e:  # noqa: BLE001
            self._end("failed")
            if self._on_error is not None:
                self._on_error(describe_error(e), traceback.format_exc(), e)
            return
        self._end("done")

    def _failed(self, message: str, details: str, exc: BaseException) -> None:
        self._end("failed")
        if self._on_error is not None:
            self._on_error(message, details, exc)

    def _cancelled(self) -> None:
        self._end("cancelled")


class LatestRunner(QObject):
    """Background computation of the latest request only (live previews, clone drags).

    ``request(fn)`` where ``fn(token) -> result``; a newer request cancels the token of the
    running one, whose result is then dropped. ``ready(result, tag)`` is emitted for the
    latest request only. :meth:`cancel` drops the queued request and, with ``wait``, blocks
    until the running one has returned, so that a caller may then use the objects the
    request was using (a drag session is not shared by two threads).
    """

    ready = Signal(object, object)
    error = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cond = threading.Condition()
        self._next: tuple[Callable[[CancelToken], Any], Any] | None = None
        self._token: CancelToken | None = None
        self._running = False
        self._seq = 0
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="restorelab-preview", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        with self._cond:
            return self._running or self._next is not None

    def request(self, fn: Callable[[CancelToken], Any], tag: Any = None) -> None:
        with self._cond:
            if self._token is not None:
                self._token.cancel()
            self._seq += 1
            self._next = (fn, (self._seq, tag))
            self._cond.notify_all()

    def cancel(self, wait: float | None = None) -> bool:
        """Drop the queued request and cancel the running one; with ``wait`` (seconds),
        block until nothing runs. Returns True when idle. Callable from any thread."""
        with self._cond:
            self._next = None
            self._seq += 1
            if self._token is not None:
                self._token.cancel()
            if wait is None:
                return not self._running
            return self._cond.wait_for(lambda: not self._running, timeout=wait)

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            if self._token is not None:
                self._token.cancel()
            self._cond.notify_all()

    def _loop(self) -> None:
        lower_thread_priority()
        while True:
            with self._cond:
                while self._next is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                fn, (seq, tag) = self._next
                self._next = None
                token = self._token = CancelToken()
                self._running = True
            try:
                out = fn(token)
                failed: BaseException | None = None
            except Exception as e:  # noqa: BLE001
                out, failed = None, e
            with self._cond:
                latest = seq == self._seq and not token.cancelled
                self._running = False
                self._token = None
                self._cond.notify_all()
            if failed is not None:
                if latest:
                    self.error.emit(describe_error(failed))
            elif latest:
                self.ready.emit(out, tag)
