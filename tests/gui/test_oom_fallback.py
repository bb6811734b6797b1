"""The worker's out-of-memory fallback wrapper (used by denoise, sampler and multiscale jobs)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from restorelab.gui.runner import OOM_KEY, oom_fallback_job
from restorelab.jobs import Progress, run_job


def _job(tag: str, fail_after: int | None = None, exc: BaseException | None = None,
          closed: list[str] | None = None) -> Any:
    try:
        for i in range(3):
            if fail_after is not None and i == fail_after:
                raise exc or torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
            yield Progress(i + 1, 3, sigma=0.5, message=tag)
        return tag
    finally:
        if closed is not None:
            closed.append(tag)


def test_oom_mid_run_restarts_on_cpu() -> None:
    events: list[Progress] = []
    job = oom_fallback_job(lambda: _job("gpu", 1), cpu=lambda: _job("cpu"))
    out = run_job(job, on_progress=events.append)
    assert out == "cpu"
    notes = [e.data[OOM_KEY] for e in events if OOM_KEY in e.data]
    assert len(notes) == 1 and "retrying on the CPU" in notes[0] and "out of memory" in notes[0]
    assert [e.message for e in events if not e.data] == ["gpu", "cpu", "cpu", "cpu"]


def test_oom_tiles_then_cpu_and_other_errors_propagate() -> None:
    def tiled() -> str:
        raise RuntimeError("CUDA out of memory (tiles too)")

    events: list[Progress] = []
    out = run_job(oom_fallback_job(lambda: _job("gpu", 0), tiled=tiled, cpu=lambda: _job("cpu")),
                  on_progress=events.append)
    assert out == "cpu"
    notes = [e.data[OOM_KEY] for e in events if OOM_KEY in e.data]
    assert ["in tiles" in notes[0], "on the CPU" in notes[1]] == [True, True]
    # not an out-of-memory error: no fallback
    with pytest.raises(ValueError, match="bad"):
        run_job(oom_fallback_job(lambda: _job("gpu", 0, ValueError("bad")), cpu=lambda: _job("cpu")))
    # every attempt out of memory: the last error reaches the GUI
    with pytest.raises(torch.cuda.OutOfMemoryError):
        run_job(oom_fallback_job(lambda: _job("gpu", 0), cpu=lambda: _job("cpu", 2)))


def test_cancel_closes_the_running_attempt() -> None:
    closed: list[str] = []
    g = oom_fallback_job(lambda: _job("gpu", 1, closed=closed), cpu=lambda: _job("cpu", closed=closed))
    assert next(g).message == "gpu"
    assert OOM_KEY in next(g).data  # the GPU attempt failed (and was finalised)
    assert next(g).message == "cpu"
    g.close()  # what the worker does on Cancel
    assert closed == ["gpu", "cpu"]
