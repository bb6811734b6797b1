"""Sampling from the prior implicit in a denoiser (Kadkhodaie & Simoncelli, 2021).

Algorithm 1 (unconditional) and Algorithm 2 (linear inverse problems), coarse-to-fine
stochastic gradient ascent on log p(y) using the denoiser residual
``f(y) = x̂(y) − y = σ² ∇_y log p(y)`` (Miyasawa / Tweedie), exactly as the paper states:

* ``h_t = h₀ t / (1 + h₀ (t − 1))``
* ``d_t = (I − MMᵀ) f(y_{t−1}) + M (x_c − Mᵀ y_{t−1})``   (Algorithm 1: ``M = 0``)
* ``σ_t² = ‖d_t‖² / N``
* ``γ_t² = ((1 − β h_t)² − (1 − h_t)²) σ_t²``
* ``y_t = y_{t−1} + h_t d_t + γ_t z_t``,  ``z_t ~ N(0, I)``
* initialisation ``y₀ ~ N(0.5 (I − MMᵀ) e + M x_c, σ₀² I)`` (``e`` the all-ones image),
  loop **while σ_{t−1} > σ_L** (the seed's OCR prints the condition backwards).

Improvements over the original code, each optional or harmless:

1. **Iteration cap, stall and divergence detection.** The loop stops after ``max_iter``
   iterations, when σ_t has not reached a new minimum for ``patience`` iterations (a
   denoiser whose residual does not vanish on clean images, e.g. a classical smoother at
   fixed strength), or when σ_t grows to 4× max(σ₀, its first value) (a denoiser that over-estimates
   the noise feeds the injected noise γ_t and diverges); the result then says
   ``converged=False`` with a clear message instead of looping forever.
2. **Exact measurements and a final denoise.** The last iterate is denoised once more and
   projected onto the measurement-consistent set: ``x = (I − MMᵀ) x̂(y) + M x_c``, so that
   ``Mᵀ x = x_c`` exactly (to float precision).
3. **K samples at once** (batched as N = K on the device, each with its own σ_t and stop):
   their mean (a better MMSE-like estimate) and per-pixel standard deviation (an
   uncertainty map).
4. **Optional clipping** of the result to [0, 1] (after the projection; for pixel
   measurements within [0, 1] the measurements stay exact).
5. **Colour** images (C = 3) when the denoiser handles them.
6. **Non-blind denoisers.** A blind denoiser (the BF-CNN) ignores σ; a classical one
   needs a noise level, so the sampler passes its current estimate of the noise in
   ``y_t``: σ₀ for the first call, then ``(1 − β h_t) σ_t`` (the expected noise after the
   step, per sample).

Reproducible from ``seed`` (one ``torch.Generator`` per run); cancellable between
iterations (the job protocol): a closed job returns nothing and writes nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from restorelab.device import resolve_device, threads_for_work
from restorelab.jobs import Progress
from restorelab.params import Param, resolve_params
from restorelab.prior._util import as_denoiser, call_denoiser, image_to_tensor, tensor_to_image, thumbnail
from restorelab.prior.operators import Operator
from restorelab.sample_result import SampleResult

__all__ = [
    "SampleResult",
    "SAMPLER_PARAMS",
    "INVERSE_PARAMS",
    "step_size",
    "sample_job",
    "inverse_job",
    "sample",
    "inverse",
]

MAX_FRAMES = 48


def _common_params(beta: float) -> tuple[Param, ...]:
    return (
        Param("seed", int, 0, label="Random seed",
              lo=0, hi=2**31 - 1, help="random seed (initial noise and injected noise)"),
        Param("samples", int, 1, label="Number of samples K",
              lo=1, hi=256, help="number K of samples drawn at once (mean and std map)"),
        Param("sigma0", float, 1.0, label="Initial noise σ₀", lo=1e-3, hi=10.0, log=True, group="schedule",
              help="σ₀: standard deviation of the initial noise"),
        Param("sigma_L", float, 0.01, label="Final noise level σ_L",
              lo=1e-4, hi=0.5, log=True, sigma_like=True, group="schedule",
              help="σ_L: stop when the effective noise σ_t falls to this level"),
        Param("h0", float, 0.01, label="Initial step size h₀", lo=1e-4, hi=1.0, log=True, group="schedule",
              help="h₀: initial step size, h_t = h₀t/(1+h₀(t−1))"),
        Param("beta", float, beta, label="Noise removed per step β",
              lo=1e-3, hi=1.0, log=True, group="schedule",
              help="β: fraction of the noise removed per step (1: no injected noise)"),
        Param("max_iter", int, 3000, label="Maximum iterations",
              lo=1, hi=100000, group="stopping", help="iteration cap"),
        Param("patience", int, 200, label="Patience (iterations)", lo=1, hi=100000, group="stopping",
              help="stop when σ_t has not reached a new minimum for this many iterations"),
        Param("clip", bool, False, label="Clip to [0, 1]", help="clip the result to [0, 1]"),
        Param("preview_every", int, 5, label="Preview interval (iterations)",
              lo=1, hi=10000, help="a preview image every this many iterations"),
    )


#: Algorithm 1 (synthesis) parameters: β = 0.5 as the paper
SAMPLER_PARAMS: tuple[Param, ...] = _common_params(0.5)
#: Algorithm 2 (inverse problems) parameters: β = 0.01 as the paper
INVERSE_PARAMS: tuple[Param, ...] = _common_params(0.01)


def step_size(t: int | np.ndarray, h0: float) -> Any:
    """h_t = h₀ t / (1 + h₀ (t − 1)) (Kadkhodaie & Simoncelli 2021, Algorithms 1–2)."""
    return h0 * t / (1.0 + h0 * (t - 1))


@dataclass
class _State:
    t: int
    h: float
    sigma: torch.Tensor  # (K,) σ_t of this iteration (previous value for stopped samples)
    ran: torch.Tensor  # (K,) bool, the samples updated in this iteration
    active: torch.Tensor  # (K,) bool, after this iteration
    y: torch.Tensor  # (K, C, H, W)


def _proj(op: Any, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``M Mᵀ x`` for the rows ``idx`` of the batch: an operator with one mask per sample
    (``proj_rows``, as the inpainting windows) is applied with those samples' masks."""
    rows = getattr(op, "proj_rows", None)
    return op.proj(x) if rows is None else rows(x, idx)


def _ascent(
    den: Any,
    op: Operator | None,
    Mxc: torch.Tensor | None,
    shape: tuple[int, int, int, int],
    gen: torch.Generator,
    device: torch.device,
    p: dict[str, Any],
    y0: torch.Tensor | None = None,
) -> Generator[_State, None, tuple[torch.Tensor, torch.Tensor, int, bool, str]]:
    """The coarse-to-fine ascent shared by Algorithms 1 and 2 (and the 2-D demo).

    Yields the state after each iteration; returns (final y, noise estimate, iterations,
    converged, message).
    """
    K = shape[0]
    n = shape[1] * shape[2] * shape[3]
    sigma0, sigma_L, h0, beta = p["sigma0"], p["sigma_L"], p["h0"], p["beta"]
    if y0 is None:
        e = torch.ones((1, *shape[1:]), device=device)
        mean0 = 0.5 * e if op is None else 0.5 * (e - op.proj(e)) + Mxc
        y = mean0 + sigma0 * torch.randn(shape, generator=gen, device=device)
    else:
        y = y0.clone()
    sig_in = torch.full((K,), float(sigma0), device=device)
    sig = torch.full((K,), float("inf"), device=device)
    best = torch.full((K,), float("inf"), device=device)
    since_best = torch.zeros(K, dtype=torch.long, device=device)
    active = torch.ones(K, dtype=torch.bool, device=device)
    converged_each = torch.zeros(K, dtype=torch.bool, device=device)
    diverged_each = torch.zeros(K, dtype=torch.bool, device=device)
    sig_first = torch.full((K,), float("inf"), device=device)
    t = 1
    message = ""
    while True:
        h = float(step_size(t, h0))
        ran = active.clone()
        idx = active.nonzero().flatten()
        ya = y[idx]
        f = call_denoiser(den, ya, sig_in[idx]) - ya
        if op is None:
            d = f
        else:
            mx = Mxc[idx] if (Mxc.ndim == 4 and Mxc.shape[0] == K) else Mxc  # per-sample measurements
            d = f - _proj(op, f, idx) + mx - _proj(op, ya, idx)
        level = getattr(op, "noise_level", None)  # an operator may say where the noise is measured
        st = d.flatten(1).norm(dim=1) / math.sqrt(n) if level is None else level(d, idx)
        g2 = (1.0 - beta * h) ** 2 - (1.0 - h) ** 2
        gamma = math.sqrt(max(g2, 0.0)) * st
        z = torch.randn(shape, generator=gen, device=device)[idx]  # drawn for all K: reproducible
        y[idx] = ya + h * d + gamma.view(-1, 1, 1, 1) * z
        sig[idx] = st
        if p.get("sigma_mode", "measured") == "schedule":
            sig_in[idx] = sig_in[idx] * (1.0 - beta * h)
        else:
            sig_in[idx] = (1.0 - beta * h) * st
        improved = st < best[idx]
        best[idx] = torch.where(improved, st, best[idx])
        since_best[idx] = torch.where(improved, torch.zeros_like(since_best[idx]), since_best[idx] + 1)
        done = st <= sigma_L
        if p.get("sigma_mode") == "schedule":  # a known noise schedule: both must have fallen
            done &= sig_in[idx] <= sigma_L
        converged_each[idx] |= done
        if t == 1:
            sig_first[idx] = st
        diverged = st > 4.0 * torch.clamp(sig_first[idx], min=sigma0)
        diverged_each[idx] |= diverged
        stalled = (since_best[idx] > p["patience"]) | diverged
        active[idx] = ~(done | stalled)
        yield _State(t, h, sig.clone(), ran, active.clone(), y)
        if not bool(active.any()):
            break
        if t >= p["max_iter"]:
            break
        t += 1
    converged = bool(converged_each.all())
    if not converged:
        worst = float(sig[~converged_each].max())
        if bool(active.any()):
            why = f"reached the iteration cap max_iter = {p['max_iter']}"
        elif bool(diverged_each.any()):
            why = "σ_t grew to 4× its first value (diverging)"
        else:
            why = f"σ_t stopped decreasing (no new minimum in {p['patience']} iterations)"
        message = (
            f"not converged: {why}; σ_t = {worst:.4g} > σ_L = {sigma_L:.4g} after {t} iterations "
            f"for {int((~converged_each).sum())} of {K} sample(s). The result is the last iterate, denoised. "
            "The denoiser's residual x̂(y) − y must shrink with the noise: a non-blind denoiser at a fixed "
            "strength, or an under-trained one that over-smooths clean images, stalls or diverges. "
            "Try a larger σ_L or β, or a better (blind) denoiser."
        )
    else:
        message = f"converged: σ_t ≤ σ_L = {sigma_L:.4g} after {t} iterations"
    return y, sig_in, t, converged, message


def _run(
    den: Any,
    op: Operator | None,
    x_c: torch.Tensor | None,
    shape: tuple[int, int, int, int],
    channels_last: bool,
    p: dict[str, Any],
    device: torch.device,
    kind: str,
) -> Generator[Progress, None, SampleResult]:
    """:func:`_run_steps` with torch's CPU threads set by the thread policy
    (:func:`restorelab.device.torch_threads_for_work`: the free cores) for the run."""
    if device.type != "cpu":
        return (yield from _run_steps(den, op, x_c, shape, channels_last, p, device, kind))
    with threads_for_work():
        return (yield from _run_steps(den, op, x_c, shape, channels_last, p, device, kind))


def _run_steps(
    den: Any,
    op: Operator | None,
    x_c: torch.Tensor | None,
    shape: tuple[int, int, int, int],
    channels_last: bool,
    p: dict[str, Any],
    device: torch.device,
    kind: str,
) -> Generator[Progress, None, SampleResult]:
    t0 = time.perf_counter()
    gen = torch.Generator(device=device)
    gen.manual_seed(int(p["seed"]))
    Mxc = None if op is None else op.M(x_c)
    log: list[tuple[int, float, float]] = []
    sig_rows: list[np.ndarray] = []
    frames: list[tuple[int, torch.Tensor]] = []
    stride = 1
    span = math.log(max(p["sigma0"], 1e-12) / p["sigma_L"]) if p["sigma0"] > p["sigma_L"] else 1.0
    core = _ascent(den, op, Mxc, shape, gen, device, p)
    try:
        while True:
            try:
                st = next(core)
            except StopIteration as stop:
                y, sig_in, iters, converged, message = stop.value
                break
            row = st.sigma.detach().cpu().numpy().astype(np.float64)
            was_active = st.ran.cpu().numpy()
            row[~was_active] = np.nan
            sig_rows.append(row)
            smax = float(np.max(row[was_active])) if was_active.any() else float("nan")
            log.append((st.t, smax, st.h))
            if st.t % stride == 0:
                frames.append((st.t, thumbnail(st.y[0])))
                if len(frames) > MAX_FRAMES:
                    frames = frames[::2]
                    stride *= 2
            preview = None
            data: dict[str, Any] = {
                "sigmas": row.tolist(),
                "active": int(st.active.sum()),
                "fraction": float(min(1.0, max(0.0, math.log(p["sigma0"] / max(smax, 1e-12)) / span))),
            }
            if st.t % p["preview_every"] == 0 or st.t == 1:
                preview = tensor_to_image(st.y[0].clamp(0, 1), channels_last)
            yield Progress(step=st.t, total=None, sigma=smax, h=st.h, preview=preview,
                           message=f"{kind}: t = {st.t}, σ_t = {smax:.4f}, h_t = {st.h:.4f}", data=data)
    finally:
        core.close()
    # final step: denoise, then satisfy the measurements exactly
    x = call_denoiser(den, y, sig_in)
    if op is not None:
        x = x - op.proj(x) + Mxc
    if p["clip"]:
        x = x.clamp(0.0, 1.0)
    consistency = None
    if op is not None:
        diff = op.Mt(x) - x_c
        consistency = float(diff.abs().max()) if diff.numel() else 0.0  # no measurements: nothing to match
    mean = x.mean(dim=0)
    std = x.std(dim=0, correction=1) if x.shape[0] > 1 else torch.zeros_like(mean)
    sig_log = np.array(sig_rows) if sig_rows else np.zeros((0, shape[0]))
    res = SampleResult(
        samples=[tensor_to_image(x[k], channels_last) for k in range(x.shape[0])],
        mean=tensor_to_image(mean, channels_last),
        std=tensor_to_image(std, channels_last),
        log=log,
        sigma_log=sig_log,
        iterations=iters,
        converged=converged,
        message=message,
        frames=[(t, tensor_to_image(f, channels_last)) for t, f in frames],
        seconds=time.perf_counter() - t0,
        params=dict(p),
        consistency=consistency,
        degraded=None if op is None else tensor_to_image(Mxc.reshape(shape[1:]), channels_last),
        seed=int(p["seed"]),
    )
    yield Progress(step=iters, total=iters, sigma=log[-1][1] if log else None, h=log[-1][2] if log else None,
                   preview=tensor_to_image(x[0].clamp(0, 1), channels_last), message=message,
                   data={"done": True})
    return res


def _device(device: Any) -> torch.device:
    return resolve_device(device)


def sample_job(
    denoiser: Any,
    shape: tuple[int, int] = (64, 64),
    channels: int = 1,
    device: Any = "auto",
    **params: Any,
) -> Generator[Progress, None, SampleResult]:
    """Algorithm 1 of Kadkhodaie & Simoncelli (2021): draw ``samples`` images from the prior
    implicit in ``denoiser`` (a :class:`Denoiser` or a registry name).

    A generator job: yields ``Progress(step=t, sigma=σ_t, h=h_t, preview=y_t every
    preview_every steps)`` and returns a :class:`SampleResult`. Non-blind denoisers receive
    the current noise estimate (see the module docstring for every change to the paper).
    ``params`` are those of :data:`SAMPLER_PARAMS` (seed, samples, σ₀, σ_L, h₀, β, max_iter,
    patience, clip, preview_every), declared there once with their defaults and ranges.
    """
    p = resolve_params(SAMPLER_PARAMS, params)
    try:
        h, w = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be (H, W), got {shape!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"shape must be positive, got {shape!r}")
    if int(channels) not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    dev = _device(device)
    den = as_denoiser(denoiser, device)
    return (yield from _run(den, None, None, (p["samples"], int(channels), h, w), int(channels) == 3, p, dev,
                            "Algorithm 1"))


def inverse_job(
    denoiser: Any,
    operator: Operator,
    data: Any = None,
    *,
    x_c: Any = None,
    device: Any = "auto",
    **params: Any,
) -> Generator[Progress, None, SampleResult]:
    """Algorithm 2 of Kadkhodaie & Simoncelli (2021): sample from p(x | Mᵀx = x_c).

    ``data`` is an image (H, W[, C]) whose measurements ``x_c = Mᵀ image`` are taken
    (for inpainting, the pixels to fill are ignored), or the measurements themselves
    ((m,) or (C, m)); ``x_c=`` names measurements explicitly. The result satisfies them
    exactly (``consistency`` reports max |Mᵀx − x_c|). Same job protocol as
    :func:`sample_job`; ``params`` are those of :data:`INVERSE_PARAMS`.
    """
    if not isinstance(operator, Operator):
        raise TypeError(f"operator must be a prior.operators.Operator, got {type(operator).__name__}")
    p = resolve_params(INVERSE_PARAMS, params)
    dev = _device(device)
    if (data is None) == (x_c is None):
        raise ValueError("give either an image (data) or the measurements (x_c), not both and not none")
    H, W = operator.shape
    if data is not None and _is_image(data, operator):
        img, chan = image_to_tensor(data, dev)
        xc = operator.Mt(img[0])
        C = img.shape[1]
    else:
        meas = data if data is not None else x_c
        xc, chan, C = _measurements(meas, operator, dev)
    den = as_denoiser(denoiser, device)
    return (yield from _run(den, operator, xc, (p["samples"], C, H, W), chan, p, dev, "Algorithm 2"))


def _is_image(data: Any, op: Operator) -> bool:
    shp = tuple(data.shape)
    if isinstance(data, np.ndarray):
        return shp[:2] == op.shape and data.ndim in (2, 3) and (data.ndim == 2 or shp[2] in (1, 3, 4))
    return data.ndim in (2, 3) and shp[-2:] == op.shape


def _measurements(meas: Any, op: Operator, dev: torch.device) -> tuple[torch.Tensor, bool, int]:
    if isinstance(meas, np.ndarray):
        if not np.issubdtype(meas.dtype, np.number) or meas.dtype == bool:
            raise TypeError(f"measurements must be numeric, got {meas.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(meas, dtype=np.float32))
    elif isinstance(meas, torch.Tensor):
        t = meas.detach().float()
    else:
        raise TypeError(f"expected an image or measurements array, got {type(meas).__name__}")
    if t.ndim == 1:
        t, chan = t[None], False
    elif t.ndim == 2:
        chan = True
    else:
        raise ValueError(f"measurements must be (m,) or (C, m), got shape {tuple(t.shape)}")
    if t.shape[-1] != op.m:
        raise ValueError(f"expected {op.m} measurements per channel for {op!r}, got {t.shape[-1]} "
                         f"(or an image of shape {op.shape})")
    if t.shape[0] not in (1, 3):
        raise ValueError(f"measurements need 1 or 3 channels, got {t.shape[0]}")
    if not torch.isfinite(t).all():
        raise ValueError("measurements contain NaN or infinite values")
    return t.to(dev), chan and t.shape[0] == 3, t.shape[0]


def sample(denoiser: Any, **kw: Any) -> SampleResult:
    """Run :func:`sample_job` to the end."""
    from restorelab.jobs import run_job

    return run_job(sample_job(denoiser, **kw))


def inverse(denoiser: Any, operator: Operator, data: Any = None, **kw: Any) -> SampleResult:
    """Run :func:`inverse_job` to the end."""
    from restorelab.jobs import run_job

    return run_job(inverse_job(denoiser, operator, data, **kw))
