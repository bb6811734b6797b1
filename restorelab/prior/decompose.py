"""Multiscale decomposition by repeated denoising (Milanfar & Delbracio, 2024, Section 2).

With a denoiser ``f`` at a fixed strength σ, and ``f⁰ = identity``::

    x = fⁿ(x) + Σ_{k=0}^{n−1} r_k,      r_k = f^k(x) − f^{k+1}(x),

a telescoping sum, so the reconstruction is exact for ANY denoiser. Re-weighting the
residual layers, ``x' = fⁿ(x) + Σ w_k r_k``, enhances (w_k > 1) or smooths (w_k < 1) the
details of scale k (k = 0 is the finest).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from restorelab.denoise.base import check_sigma
from restorelab.image import as_float_image
from restorelab.jobs import Progress, run_job
from restorelab.params import Param
from restorelab.prior._util import as_denoiser

__all__ = ["Decomposition", "decompose", "decompose_job", "DECOMPOSE_PARAMS"]

DECOMPOSE_PARAMS: tuple[Param, ...] = (
    Param("levels", int, 4, lo=1, hi=64, label="Number of layers", help="number n of residual layers"),
    Param("sigma", float, 25 / 255, lo=0.0, hi=1.0, sigma_like=True,
          label="Denoiser strength σ",
          help="denoiser strength σ used at every level (blind denoisers ignore it)"),
)


@dataclass
class Decomposition:
    """``base = fⁿ(x)`` and ``residuals[k] = f^k(x) − f^{k+1}(x)``: float32 on the [0, 1] scale
    whatever the input's dtype (an 8-bit x is read as x/255; layers are signed and unclipped)."""

    base: np.ndarray
    residuals: list[np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def levels(self) -> int:
        return len(self.residuals)

    def recompose(self, gains: float | Sequence[float] | None = None, base_gain: float = 1.0) -> np.ndarray:
        """x' = base_gain · fⁿ(x) + Σ_k w_k r_k (unit gains give x back exactly, up to float rounding).

        ``gains`` is one value per level (finest first), a scalar for all levels, or None
        (all 1). Summed in float64, returned as float32, unclipped.
        """
        n = self.levels
        if gains is None:
            w = [1.0] * n
        elif np.isscalar(gains):
            w = [float(gains)] * n  # type: ignore[arg-type]
        else:
            w = [float(g) for g in gains]  # type: ignore[union-attr]
            if len(w) != n:
                raise ValueError(f"expected {n} gains (one per level), got {len(w)}")
        if not all(np.isfinite(w)) or not np.isfinite(base_gain):
            raise ValueError("gains must be finite numbers")
        out = float(base_gain) * self.base.astype(np.float64)
        for wk, r in zip(w, self.residuals, strict=True):
            out += wk * r.astype(np.float64)
        return out.astype(np.float32)


def decompose_job(
    x: np.ndarray, denoiser: Any, levels: int = 4, sigma: float = 25 / 255
) -> Generator[Progress, None, Decomposition]:
    """Job version of :func:`decompose`: one progress event per level (and the denoiser's own)."""
    den = as_denoiser(denoiser)
    s = check_sigma(sigma)
    try:
        n = int(levels)
    except (TypeError, ValueError):
        raise ValueError(f"levels must be an integer, got {levels!r}") from None
    if n < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    if not isinstance(x, np.ndarray):
        raise TypeError(f"expected a numpy image, got {type(x).__name__}")
    cur = as_float_image(x, copy=True)  # uint8 → x/255 ...; shape and finiteness checked
    residuals = []
    for k in range(n):
        inner = den.job(cur, s)
        try:
            while True:
                try:
                    ev = next(inner)
                except StopIteration as stop:
                    nxt = np.asarray(stop.value, dtype=np.float32)
                    break
                yield Progress(k, n, message=f"level {k + 1}/{n}: {ev.message}", data={"inner_step": ev.step})
        finally:
            inner.close()
        residuals.append(cur - nxt)
        cur = nxt
        yield Progress(k + 1, n, preview=cur, message=f"level {k + 1}/{n} done")
    return Decomposition(base=cur, residuals=residuals,
                         meta={"method": den.name, "params": dict(den.values), "sigma": s, "levels": n})


def decompose(x: np.ndarray, denoiser: Any, levels: int = 4, sigma: float = 25 / 255) -> Decomposition:
    """x = fⁿ(x) + Σ_{k<n} r_k with r_k = f^k(x) − f^{k+1}(x) (Milanfar & Delbracio 2024, Eq. 13).

    ``denoiser`` is a :class:`~restorelab.denoise.base.Denoiser` or a registry name; it is
    applied at strength ``sigma`` at every level.
    """
    return run_job(decompose_job(x, denoiser, levels, sigma))
