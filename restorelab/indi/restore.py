"""N-step restoration by direct iteration (InDI; Delbracio & Milanfar, TMLR 2023, Algorithm 2).

Training makes F_θ(x_t, t) ≈ E[x | x_t] on the straight path x_t = (1 − t) x + t y
(+ t ε η). Restoration starts at x_1 = y + ε η and walks the path back to t = 0 in N
equal steps δ = 1/N with the InDI update

    x_{t−δ} = (δ/t) F_θ(x_t, t) + (1 − δ/t) x_t,

a small step toward the network's current estimate of the clean image. N = 1 is one
regression step, x_0 = F_θ(y, 1), the minimum-MSE answer (best PSNR, soft); more steps let
each step's estimate commit to less of the average and trade distortion for detail. If F
always returned the same image x, every x_t would lie on the line (1 − t) x + t x_1 — the
update is exact for the path it was trained on.

The job runs F tile by tile over the whole image at every step
(:func:`restorelab.models.infer.tiled_job`, exact when the tile overlap is at least the
network's receptive-field radius), yields a :class:`~restorelab.jobs.Progress` per tile with
the step's fraction, and a preview of x_t after each step; it is cancelled between tiles.
Deterministic under ``seed`` (the starting noise η is drawn on the CPU from that seed).
"""

from __future__ import annotations

import math
import os
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from restorelab.image import as_float_image
from restorelab.indi import paths
from restorelab.indi.degrade import DEGRADATIONS
from restorelab.jobs import Progress
from restorelab.params import Param, resolve_params

__all__ = ["IndiResult", "RESTORE_PARAMS", "indi_times", "indi_step", "restore_job", "restore", "load_for"]

#: the restoration parameters, declared once (CLI, GUI and library check the same ranges)
RESTORE_PARAMS: tuple[Param, ...] = (
    Param("steps", int, 10, lo=1, hi=200, label="steps N",
          help="number of InDI steps from t = 1 to t = 0 (1 = plain regression)"),
    Param("seed", int, 0, lo=0, hi=2**31 - 1, help="seed of the starting noise ε η"),
    Param("tile", int, 512, lo=0, hi=8192, unit="px",
          help="core tile size for the network at every step (0 = the whole image at once)"),
)

#: trajectories whose frames would exceed this many bytes keep evenly spaced frames only
TRAJECTORY_BYTES = 512 << 20


@dataclass
class IndiResult:
    """The restored image, and the kept frames x_t of the trajectory with their times."""

    image: np.ndarray
    trajectory: list[np.ndarray] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    degradation: str = ""
    steps: int = 0
    seed: int = 0


def indi_times(steps: int) -> list[float]:
    """t_k = 1 − k/N for k = 0..N (the grid of the N equal steps)."""
    n = int(steps)
    if n < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return [1.0 - k / n for k in range(n + 1)]


def indi_step(x_t: torch.Tensor, f: torch.Tensor, t: float, delta: float) -> torch.Tensor:
    """x_{t−δ} = (δ/t) F(x_t, t) + (1 − δ/t) x_t."""
    a = float(delta) / float(t)
    return a * f + (1.0 - a) * x_t


_CACHE: dict[tuple[str, float, str], Any] = {}


def load_for(degradation: str, model: Any = None, device: Any = "cpu") -> tuple[Any, float]:
    """(network, ε) for ``degradation``: ``model`` is an :class:`~restorelab.indi.net.IndiNet`
    (ε = 0 unless it carries an ``eps`` attribute), a weights path, or None for the shipped one."""
    from restorelab.indi.weights import load_indi

    if model is not None and not isinstance(model, (str, os.PathLike)):
        return model, float(getattr(model, "eps", 0.0))
    p = Path(model) if model is not None else paths.model_path(degradation)
    if model is None and not p.is_file():
        raise FileNotFoundError(f"no InDI model for {degradation!r} is installed (expected {p})")
    key = (str(p.resolve()), p.stat().st_mtime, str(device))
    if key not in _CACHE:
        if len(_CACHE) >= 3:
            _CACHE.clear()
        net, md = load_indi(p, device=device, degradation=degradation)
        _CACHE[key] = (net, float(md["eps"]))
    return _CACHE[key]


def _as_rgb(y: Any) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(H, W, 3) float32 image, the alpha channel if any, and whether the input was gray."""
    a = as_float_image(y, name="image")
    if a.ndim == 2:
        return np.repeat(a[:, :, None], 3, axis=2), None, True
    if a.shape[2] == 4:
        return np.ascontiguousarray(a[:, :, :3]), a[:, :, 3:].copy(), False
    return a, None, False


def _back(x: np.ndarray, alpha: np.ndarray | None, gray: bool) -> np.ndarray:
    if gray:
        return np.ascontiguousarray(x.mean(axis=2, dtype=np.float32))
    if alpha is not None:
        return np.concatenate([x, alpha], axis=2)
    return x


def restore_job(
    y: Any,
    degradation: str,
    steps: int = 10,
    *,
    seed: int = 0,
    device: Any = "auto",
    model: Any = None,
    tile: int | None = None,
    overlap: int | None = None,
    eps: float | None = None,
    keep_trajectory: bool = True,
    clip: bool = True,
) -> Generator[Progress, None, IndiResult]:
    """Restore ``y`` (H, W[, C], any of the project's image types) by N InDI steps, as a job.

    Parameters
    ----------
    y : array_like
        The degraded photo; gray is restored as RGB and averaged back, alpha is kept.
    degradation : {"blur", "sr4", "jpeg"}
        Which trained network to use.
    steps : int
        N, see :data:`RESTORE_PARAMS`.
    seed : int
        Seed of the starting noise (ε η, ε stored with the model).
    device : str
        ``auto``, ``cpu`` or ``cuda``.
    model : IndiNet, path or None
        The network (tests, benchmarks) or a weights file; None loads the shipped one.
    tile, overlap : int, optional
        Tile core size (default 512; 0 = whole image) and context (default the receptive
        radius, which makes the tiled result equal to the whole-image one).
    eps : float, optional
        Override ε (0 starts exactly at y).
    keep_trajectory : bool
        Keep the frames x_t (up to :data:`TRAJECTORY_BYTES`, evenly thinned beyond).
    clip : bool
        Clip the result (not the trajectory) to [0, 1].

    Yields
    ------
    Progress
        One per tile, ``step``/``total`` counting tiles over all N steps, ``sigma`` = t,
        ``preview`` = x_t (H, W, C) after each completed step, ``data`` = {"t", "index"}.

    Returns
    -------
    IndiResult
    """
    from restorelab.device import resolve_device
    from restorelab.models.infer import tiled_job

    p = resolve_params(RESTORE_PARAMS, {"steps": steps, "seed": seed,
                                        **({"tile": tile} if tile is not None else {})})
    if degradation not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {degradation!r}; expected one of {', '.join(DEGRADATIONS)}")
    rgb, alpha, gray = _as_rgb(y)
    dev = resolve_device(device)
    net, eps_model = load_for(degradation, model, dev)
    e = eps_model if eps is None else float(eps)
    if not 0.0 <= e < 1.0:
        raise ValueError(f"eps must be in [0, 1), got {e}")
    ov = int(net.receptive_radius()) if overlap is None else int(overlap)
    mult = int(getattr(net, "multiple", 1))
    n = p["steps"]
    times = indi_times(n)
    h, w = rgb.shape[:2]
    frame_bytes = h * w * 3 * 4
    keep_every = max(1, math.ceil((n + 1) * frame_bytes / TRAJECTORY_BYTES)) if keep_trajectory else 0
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    if e > 0:
        g = torch.Generator().manual_seed(p["seed"])
        x = x + e * torch.randn(x.shape, generator=g)
    x = x.to(dev)
    traj: list[np.ndarray] = []
    kept_t: list[float] = []

    def frame(z: torch.Tensor) -> np.ndarray:
        return z[0].permute(1, 2, 0).float().cpu().numpy().copy()

    if keep_every:
        traj.append(_back(frame(x), alpha, gray))
        kept_t.append(1.0)
    done_tiles, per_step = 0, None
    with torch.inference_mode():
        for k in range(n):
            t, delta = times[k], times[k] - times[k + 1]
            job = tiled_job(lambda z, t=t: net(z, t), x, tile=p["tile"], overlap=ov, multiple=mult,
                            message=f"step {k + 1}/{n}")
            while True:
                try:
                    ev = next(job)
                except StopIteration as stop:
                    f = stop.value
                    break
                if per_step is None and ev.total:
                    per_step = int(ev.total)
                if ev.step == 0:
                    continue
                done_tiles += 1
                yield Progress(done_tiles, (per_step or 1) * n, sigma=t, message=ev.message,
                               data={"t": t, "index": k})
            x = indi_step(x, f.to(x.dtype).contiguous(), t, delta)
            t_next = times[k + 1]
            img = _back(frame(x) if k + 1 < n else frame(x.clamp(0, 1) if clip else x), alpha, gray)
            if keep_every and ((k + 1) % keep_every == 0 or k + 1 == n):
                traj.append(img)
                kept_t.append(t_next)
            yield Progress(done_tiles, (per_step or 1) * n, sigma=t_next, preview=img,
                           message=f"x_t at t = {t_next:.3f}", data={"t": t_next, "index": k + 1})
    out = _back(frame(x.clamp(0, 1) if clip else x), alpha, gray)
    return IndiResult(out, traj, kept_t, degradation, n, p["seed"])


def restore(y: Any, degradation: str, steps: int = 10, **kw: Any) -> IndiResult:
    """Run :func:`restore_job` to the end."""
    from restorelab.jobs import run_job

    return run_job(restore_job(y, degradation, steps, **kw))
