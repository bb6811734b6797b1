"""Inversion by Direct Iteration (InDI; Delbracio & Milanfar, TMLR 2023): learned step-by-step
restoration of blur, 4× low resolution and JPEG artefacts.

A network F_θ(x_t, t) is trained on the straight path x_t = (1 − t) x + t y (+ t ε η)
between a clean image x and its degraded version y to predict x; restoration walks the path
from x_1 = y to x_0 in N small steps (:mod:`restorelab.indi.restore`). Importing this
package is cheap (no torch); the heavy modules load on first use.
"""

from __future__ import annotations

from typing import Any

from restorelab.indi.degrade import DEGRADATIONS

__all__ = ["DEGRADATIONS", "available", "restore_job", "restore", "model_path"]


def available() -> list[str]:
    """The degradations with a shipped model (``resources/models/indi_<name>.safetensors``)."""
    from restorelab.indi import paths

    return paths.available()


def model_path(degradation: str) -> Any:
    """Where the shipped model for ``degradation`` lives."""
    from restorelab.indi import paths

    return paths.model_path(degradation)


def restore_job(y: Any, degradation: str, steps: int = 10, **kw: Any) -> Any:
    """:func:`restorelab.indi.restore.restore_job` (the N-step restoration as a job)."""
    from restorelab.indi.restore import restore_job as _restore_job

    return _restore_job(y, degradation, steps, **kw)


def restore(y: Any, degradation: str, steps: int = 10, **kw: Any) -> Any:
    """:func:`restorelab.indi.restore.restore` (run the job to the end)."""
    from restorelab.indi.restore import restore as _restore

    return _restore(y, degradation, steps, **kw)
