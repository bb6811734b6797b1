"""Plug-and-play priors and RED: deterministic solvers of ``Mᵀx = x_c`` with a denoiser.

* **PnP-ADMM** (Venkatakrishnan, Bouman & Wohlberg, 2013): ADMM on
  ``½‖Mᵀx − x_c‖²/σ_n² + R(x)`` where the proximal step of R is replaced by the denoiser:
  ``x ← prox_data(v − u)``, ``v ← D(x + u, σ_k)``, ``u ← u + x − v``.
* **PnP-HQS** (half-quadratic splitting, Zhang et al. 2017/2021):
  ``z ← D(x, σ_k)``, ``x ← prox_data(z)``.
* **RED** (Romano, Elad & Milanfar, 2017): regulariser ``½λ xᵀ(x − D(x))`` with gradient
  ``λ(x − D(x))``; steepest descent ``x ← x − μ[M(Mᵀx − x_c)/σ_n² + λ(x − D(x))]``,
  or, for exact measurements (σ_n = 0), projected descent
  ``x ← (I − MMᵀ)[x − μλ(x − D(x))] + M x_c``.

Because ``MᵀM = I``, the data proximal operator is closed form:
``prox(z) = (I − MMᵀ) z + MMᵀ (σ_d² M x_c + σ_n² z)/(σ_d² + σ_n²)`` (σ_n = 0: exact
measurements, ``(I − MMᵀ) z + M x_c``). The denoiser strength σ_k decreases
geometrically from ``sigma`` to ``sigma_end`` over the iterations (a continuation schedule
as in DPIR), so a non-blind classical denoiser works without tuning; blind ones ignore it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from restorelab.device import resolve_device
from restorelab.jobs import Progress
from restorelab.params import Param, resolve_params
from restorelab.prior._util import as_denoiser, call_denoiser, image_to_tensor, tensor_to_image
from restorelab.prior.operators import Operator

__all__ = ["PNP_METHODS", "PNP_PARAMS", "PnPResult", "pnp_job", "pnp"]

PNP_METHODS = ("pnp-admm", "pnp-hqs", "red")

PNP_PARAMS: tuple[Param, ...] = (
    Param("method", str, "pnp-admm", label="Solver", choices=PNP_METHODS, help="PnP-ADMM, PnP-HQS or RED"),
    Param("iters", int, 60, label="Iterations", lo=1, hi=10000, help="number of iterations"),
    Param("sigma", float, 50 / 255, label="Initial denoiser strength σ",
          lo=1e-4, hi=1.0, log=True, sigma_like=True,
          help="denoiser strength at the first iteration"),
    Param("sigma_end", float, 3 / 255, label="Final denoiser strength σ",
          lo=1e-4, hi=1.0, log=True, sigma_like=True,
          help="denoiser strength at the last iteration (geometric schedule)"),
    Param("noise", float, 0.0, label="Measurement noise σ_n", lo=0.0, hi=1.0, sigma_like=True,
          help="σ_n: noise of the measurements (0: satisfy them exactly)"),
    Param("lam", float, 1.0, label="RED weight λ",
          lo=1e-4, hi=100.0, log=True, help="RED: regularisation weight λ"),
    Param("mu", float, 0.5, label="RED step size μ", lo=1e-4, hi=2.0, log=True, help="RED: step size μ"),
    Param("clip", bool, False, label="Clip to [0, 1]", help="clip the result to [0, 1]"),
    Param("preview_every", int, 5, label="Preview interval (iterations)",
          lo=1, hi=10000, help="a preview image every this many iterations"),
)


@dataclass
class PnPResult:
    """``image`` (H, W[, C]); ``log`` rows (k, σ_k, ‖x_k − x_{k−1}‖/√N); ``consistency`` max |Mᵀx − x_c|."""

    image: np.ndarray
    log: list[tuple[int, float, float]]
    iterations: int
    seconds: float
    consistency: float
    params: dict[str, Any] = field(default_factory=dict)


def pnp_job(
    denoiser: Any,
    operator: Operator,
    data: Any,
    method: str = "pnp-admm",
    iters: int = 60,
    sigma: float = 50 / 255,
    sigma_end: float = 3 / 255,
    noise: float = 0.0,
    lam: float = 1.0,
    mu: float = 0.5,
    clip: bool = False,
    preview_every: int = 5,
    device: Any = "auto",
) -> Generator[Progress, None, PnPResult]:
    """Deterministic plug-and-play (Venkatakrishnan et al. 2013) or RED (Romano et al. 2017) job.

    ``data`` is an image (H, W[, C]) whose measurements are taken, or the measurements
    (C, m)/(m,). Yields ``Progress(step=k, total=iters, sigma=σ_k, preview=x_k)``; returns
    a :class:`PnPResult`. Starts from ``M x_c + 0.5 (I − MMᵀ) e`` as the sampler does.
    """
    from restorelab.prior.sampler import _is_image, _measurements

    if not isinstance(operator, Operator):
        raise TypeError(f"operator must be an Operator, got {type(operator).__name__}")
    p = resolve_params(PNP_PARAMS, dict(method=method, iters=iters, sigma=sigma, sigma_end=sigma_end,
                                        noise=noise, lam=lam, mu=mu, clip=clip, preview_every=preview_every))
    dev = resolve_device(device)
    den = as_denoiser(denoiser, device)
    t0 = time.perf_counter()
    if _is_image(data, operator):
        img, chan = image_to_tensor(data, dev)
        xc = operator.Mt(img[0])
    else:
        xc, chan, _ = _measurements(data, operator, dev)
    Mxc = operator.M(xc)[None]
    sn2 = p["noise"] ** 2
    n = Mxc.numel()

    def prox(z: torch.Tensor, sd: float) -> torch.Tensor:
        pz = operator.proj(z)
        if sn2 == 0:
            return z - pz + Mxc
        return z - pz + (sd**2 * Mxc + sn2 * pz) / (sd**2 + sn2)

    e = torch.ones_like(Mxc)
    x = 0.5 * (e - operator.proj(e)) + Mxc
    v, u = x.clone(), torch.zeros_like(x)
    K = p["iters"]
    s0, s1 = p["sigma"], p["sigma_end"]
    log: list[tuple[int, float, float]] = []
    for k in range(1, K + 1):
        sk = s0 * (s1 / s0) ** ((k - 1) / max(K - 1, 1))
        sig = torch.tensor([sk])
        x_old = x
        if p["method"] == "pnp-admm":
            x = prox(v - u, sk)
            v = call_denoiser(den, x + u, sig)
            u = u + x - v
        elif p["method"] == "pnp-hqs":
            z = call_denoiser(den, x, sig)
            x = prox(z, sk)
        else:  # RED
            g = p["lam"] * (x - call_denoiser(den, x, sig))
            if sn2 == 0:
                x = x - p["mu"] * g
                x = x - operator.proj(x) + Mxc
            else:
                x = x - p["mu"] * ((operator.proj(x) - Mxc) / sn2 + g)
        change = float((x - x_old).norm() / math.sqrt(n))
        log.append((k, sk, change))
        preview = tensor_to_image(x[0].clamp(0, 1), chan) if (k % p["preview_every"] == 0 or k == K) else None
        yield Progress(step=k, total=K, sigma=sk, preview=preview,
                       message=f"{p['method']}: iteration {k}/{K}, σ = {sk * 255:.1f}/255",
                       data={"change": change})
    if p["method"] == "pnp-admm" and sn2 == 0:
        x = prox(v, s1)  # the denoised variable, projected onto the measurements
    if p["clip"]:
        x = x.clamp(0, 1)
    cons = float((operator.Mt(x[0]) - xc).abs().max())
    return PnPResult(image=tensor_to_image(x[0], chan), log=log, iterations=K,
                     seconds=time.perf_counter() - t0, consistency=cons, params=dict(p))


def pnp(denoiser: Any, operator: Operator, data: Any, **kw: Any) -> PnPResult:
    """Run :func:`pnp_job` to the end."""
    from restorelab.jobs import run_job

    return run_job(pnp_job(denoiser, operator, data, **kw))
