"""The one result type of the implicit-prior sampler (Kadkhodaie & Simoncelli, 2021).

:class:`SampleResult` is what :func:`restorelab.prior.sampler.sample_job` /
``inverse_job`` return, what the workspace keeps as its last sampler result and what a
session file stores (:mod:`restorelab.session` serialises every field). It lives in a
module of its own, with no torch import, so that reading a session does not load the
sampler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SampleResult"]


@dataclass
class SampleResult:
    """Result of Algorithm 1 or 2 of Kadkhodaie & Simoncelli (2021).

    ``samples``: K images (H, W[, C]) float32; ``mean`` and ``std`` over them (``std`` is
    the per-pixel standard deviation, zeros for K = 1); ``log``: rows (t, σ_t, h_t) with
    σ_t the largest value over the samples still running; ``sigma_log``: (T, K) σ_t per
    sample (NaN once a sample stopped); ``frames``: ≤ 48 thumbnails (t, y_t of sample 0)
    for a scrubber; ``consistency``: max |Mᵀx − x_c| over the samples (inverse problems);
    ``degraded``: the measurements shown as an image (inverse problems).

    ``method`` names the task (``"sample"``, ``"inpaint"``, ...), ``params`` the resolved
    parameters (the GUI adds the denoiser name and the crop ``origin``) and ``seed`` the
    random seed, so that a saved result says how it was made.
    """

    samples: list[np.ndarray]
    mean: np.ndarray
    std: np.ndarray
    log: list[tuple[int, float, float]]
    sigma_log: np.ndarray
    iterations: int
    converged: bool
    message: str
    frames: list[tuple[int, np.ndarray]] = field(default_factory=list)
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    consistency: float | None = None
    degraded: np.ndarray | None = None
    method: str = "sample"
    seed: int | None = None
