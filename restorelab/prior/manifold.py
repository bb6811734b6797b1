"""The 2-D manifold demonstration (Kadkhodaie & Simoncelli 2021, Appendix C, Figure 10).

Signals x ∈ ℝ² are drawn uniformly (by arc length) from a 1-D curve in the plane. For this
prior the least-squares (MMSE) denoiser is computed exactly, by quadrature over the curve::

    x̂(y) = E[x | y] = Σ_i w_i c_i,   w_i ∝ exp(−‖y − c_i‖² / 2σ²)

(``c_i`` equally spaced in arc length), and so is the noisy-data density
``p(y) = (1/Q) Σ_i g_σ(y − c_i)``. The one-step least-squares solutions x̂(y) fall
inside the curve's convex hull, while the coarse-to-fine trajectories of Algorithm 1/2
(run by the same code as for images, with this exact denoiser) are curved and end on the
manifold. Everything the plot needs comes back as numpy arrays; the GUI only draws.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from restorelab.denoise.base import Denoiser
from restorelab.jobs import Progress, run_job
from restorelab.params import Param, resolve_params
from restorelab.prior.operators import DenseOperator

__all__ = ["Curve", "ManifoldDenoiser", "manifold_demo", "manifold_demo_job", "CURVES", "MANIFOLD_PARAMS"]

CURVES = ("spiral", "arc", "wave")

#: keyword arguments of :func:`manifold_demo_job` (σ levels excepted), for the CLI and GUI
MANIFOLD_PARAMS: tuple[Param, ...] = (
    Param("curve", str, "spiral", label="Manifold curve",
          choices=CURVES, help="the 1-D manifold the signals lie on"),
    Param("n_points", int, 50, label="Number of points",
          lo=1, hi=1000, help="number of signals (and trajectories)"),
    Param("seed", int, 0, label="Random seed",
          lo=0, hi=2**31 - 1, help="random seed (signals, noise, injected noise)"),
    Param("grid", int, 128, label="Density grid size", lo=2, hi=1024, help="density grid size"),
    Param("h0", float, 0.05, label="Initial step size h₀ (Algorithm 1)",
          lo=1e-4, hi=1.0, log=True, group="Algorithm 1", help="h₀ (Fig. 10: 0.05)"),
    Param("beta", float, 1.0, label="Noise removed per step β (Algorithm 1)",
          lo=1e-3, hi=1.0, log=True, group="Algorithm 1",
          help="β (Fig. 10: 1, no injected noise)"),
    Param("h0_inverse", float, 0.01, label="Initial step size h₀ (Algorithm 2)",
          lo=1e-4, hi=1.0, log=True, group="Algorithm 2", help="h₀ (Alg. 2)"),
    Param("beta_inverse", float, 0.3, label="Noise removed per step β (Algorithm 2)",
          lo=1e-3, hi=1.0, log=True, group="Algorithm 2",
          help="β of Algorithm 2 (< 1: injected noise breaks the symmetry between two crossings)"),
    Param("sigma_L", float, 0.01, label="Final noise level σ_L",
          lo=1e-4, hi=0.5, log=True, help="final noise level σ_L"),
    Param("max_iter", int, 2000, label="Maximum iterations", lo=1, hi=100000, help="iteration cap"),
)


class Curve:
    """A plane curve sampled at ``q`` points equally spaced in arc length."""

    def __init__(self, kind: str = "spiral", q: int = 2000) -> None:
        if kind not in CURVES:
            raise ValueError(f"unknown curve {kind!r}; expected one of {', '.join(CURVES)}")
        if int(q) < 10:
            raise ValueError("the curve needs at least 10 quadrature points")
        self.kind = kind
        u = np.linspace(0.0, 1.0, 20001)
        if kind == "spiral":  # r grows from 0.3 to 0.9 over 1.25 turns
            th = 2.5 * np.pi * u
            r = 0.3 + 0.6 * u
            pts = np.stack([r * np.cos(th), r * np.sin(th)], 1)
        elif kind == "arc":  # three quarters of the unit circle
            th = 1.5 * np.pi * u - 0.25 * np.pi
            pts = np.stack([0.8 * np.cos(th), 0.8 * np.sin(th)], 1)
        else:  # a sine wave
            xx = 1.8 * u - 0.9
            pts = np.stack([xx, 0.35 * np.sin(2.2 * np.pi * xx)], 1)
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        s = np.concatenate([[0.0], np.cumsum(seg)])
        self.length = float(s[-1])
        self._s, self._pts = s, pts
        self.points = self.at(np.linspace(0.0, self.length, int(q)))

    def at(self, s: np.ndarray) -> np.ndarray:
        """Points at arc lengths ``s`` (n,) → (n, 2)."""
        s = np.asarray(s, dtype=np.float64)
        return np.stack([np.interp(s, self._s, self._pts[:, 0]), np.interp(s, self._s, self._pts[:, 1])], -1)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` signals drawn uniformly by arc length."""
        return self.at(rng.uniform(0.0, self.length, int(n)))

    def distance(self, y: np.ndarray) -> np.ndarray:
        """Distance from points ``y`` (n, 2) to the curve (to the quadrature points' resolution)."""
        y = np.asarray(y, dtype=np.float64).reshape(-1, 2)
        d2 = ((y[:, None, :] - self.points[None]) ** 2).sum(-1)
        return np.sqrt(d2.min(1))


def _mmse(y: np.ndarray, pts: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """x̂(y) = Σ_i w_i c_i with w = softmax(−‖y − c_i‖²/2σ²), points y (n, 2), σ (n,)."""
    y = np.asarray(y, dtype=np.float64).reshape(-1, 2)
    sig = np.maximum(np.asarray(sigma, np.float64).reshape(-1, 1), 1e-6)
    d2 = (y[:, :1] - pts[None, :, 0]) ** 2 + (y[:, 1:] - pts[None, :, 1]) ** 2  # (n, q)
    a = -d2 / (2 * sig**2)
    a -= a.max(axis=1, keepdims=True)
    w = np.exp(a)
    w /= w.sum(axis=1, keepdims=True)
    return w @ pts


class ManifoldDenoiser(Denoiser):
    """Exact MMSE denoiser of the uniform prior on a curve, at any σ (not learned).

    Input "images" are (1, 2) (a point of the plane), or batches (N, 1, 1, 2) through
    :meth:`denoise_tensor`; ``mmse(points (n, 2), sigma)`` works on point arrays.
    """

    name: ClassVar[str] = "manifold-mmse"
    title: ClassVar[str] = "exact MMSE on a plane curve"
    torch_native: ClassVar[bool] = True

    def __init__(self, curve: Curve | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.curve = curve or Curve()
        self._pts = self.curve.points

    def mmse(self, y: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
        """x̂(y) = Σ w_i c_i, w_i ∝ exp(−‖y − c_i‖²/2σ²), for points y (n, 2)."""
        y = np.asarray(y, dtype=np.float64).reshape(-1, 2)
        sig = np.broadcast_to(np.asarray(sigma, np.float64), (y.shape[0],))
        return _mmse(y, self._pts, sig)

    def _denoise(self, x: np.ndarray, sigma: float, p: Any) -> np.ndarray:
        if x.size != 2:
            raise ValueError("the manifold denoiser works on 2-D points (images of 1×2 pixels)")
        return self.mmse(x.reshape(1, 2), sigma).reshape(x.shape).astype(np.float32)

    def _denoise_tensor(self, y: Any, sigma: Any) -> Any:
        if y.shape[1:] != (1, 1, 2):
            raise ValueError(f"expected (N, 1, 1, 2) points, got {tuple(y.shape)}")
        sig = torch.as_tensor(sigma, dtype=torch.float64).flatten().cpu().numpy()
        sig = np.broadcast_to(sig, (y.shape[0],))
        out = _mmse(y.detach().cpu().double().numpy().reshape(-1, 2), self._pts, sig)
        return torch.from_numpy(out).reshape(y.shape).to(y)

    def density(self, gx: np.ndarray, gy: np.ndarray, sigma: float) -> np.ndarray:
        """p(y) = (1/Q) Σ_i g_σ(y − c_i) on the grid gx × gy → (len(gy), len(gx))."""
        pts = self.curve.points
        gxx = np.exp(-((np.asarray(gx, np.float64)[:, None] - pts[None, :, 0]) ** 2) / (2 * sigma**2))
        gyy = np.exp(-((np.asarray(gy, np.float64)[:, None] - pts[None, :, 1]) ** 2) / (2 * sigma**2))
        out = gyy @ gxx.T  # separable Gaussian: Σ_i g(y − c_iy) g(x − c_ix)
        norm = 1.0 / (2 * np.pi * sigma**2) / len(pts)
        return out * norm


def _trajectories(
    den: ManifoldDenoiser, y0: np.ndarray, op: DenseOperator | None, x_c: np.ndarray | None, p: dict[str, Any]
) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    from restorelab.prior.sampler import _ascent

    n = y0.shape[0]
    y = torch.from_numpy(y0.astype(np.float32)).reshape(n, 1, 1, 2)
    gen = torch.Generator()
    gen.manual_seed(int(p["seed"]))
    Mxc = None if op is None else op.M(torch.from_numpy(x_c.astype(np.float32)).reshape(n, 1, 1))
    paths = [[y0[i].copy()] for i in range(n)]
    core = _ascent(den, op, Mxc, (n, 1, 1, 2), gen, torch.device("cpu"), p, y0=y)
    try:
        while True:
            try:
                st = next(core)
            except StopIteration as stop:
                yf, sig_in, iters, converged, msg = stop.value
                break
            yy = st.y.reshape(n, 2).numpy()
            for i in np.flatnonzero(st.ran.numpy()):
                paths[i].append(yy[i].astype(np.float64))
            yield Progress(st.t, None, sigma=float(st.sigma[st.ran].max()), h=st.h,
                           message=f"trajectories: t = {st.t}")
    finally:
        core.close()
    final = den.denoise_tensor(yf, sig_in)
    if op is not None:
        final = final - op.proj(final) + Mxc
    final = final.reshape(n, 2).numpy().astype(np.float64)
    for i in range(n):
        paths[i].append(final[i])
    T = max(len(q) for q in paths)
    arr = np.full((n, T, 2), np.nan)
    lens = np.array([len(q) for q in paths])
    for i, q in enumerate(paths):
        arr[i, : len(q)] = np.array(q)
    return arr, lens, final


def manifold_demo_job(
    sigma: float | Sequence[float] = (0.3, 0.15, 0.05),
    n_points: int = 50,
    seed: int = 0,
    grid: int = 128,
    curve: str = "spiral",
    h0: float = 0.05,
    beta: float = 1.0,
    sigma_L: float = 0.01,
    max_iter: int = 2000,
    measure: Sequence[float] = (1.0, 0.0),
    sigma_mode: str = "schedule",
    beta_inverse: float = 0.3,
    h0_inverse: float = 0.01,
    sigma0_inverse: float | None = None,
) -> Generator[Progress, None, dict[str, np.ndarray]]:
    """Job version of :func:`manifold_demo` (progress per stage and per iteration)."""
    from restorelab.prior.sampler import INVERSE_PARAMS

    sigmas = np.atleast_1d(np.asarray(sigma, dtype=np.float64))
    if sigmas.size == 0 or not np.all(np.isfinite(sigmas)) or np.any(sigmas <= 0):
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    if int(n_points) < 1 or int(grid) < 2:
        raise ValueError("n_points must be >= 1 and grid >= 2")
    rng = np.random.default_rng(int(seed))
    cv = Curve(curve)
    den = ManifoldDenoiser(cv, device="cpu")
    x = cv.sample(int(n_points), rng)
    lo, hi = cv.points.min(0) - 0.45, cv.points.max(0) + 0.45
    gx, gy = np.linspace(lo[0], hi[0], int(grid)), np.linspace(lo[1], hi[1], int(grid))
    noisy, ls, dens = [], [], []
    for j, s in enumerate(sigmas):
        yj = x + s * rng.standard_normal(x.shape)
        noisy.append(yj)
        ls.append(den.mmse(yj, s))
        dens.append(den.density(gx, gy, float(s)))
        yield Progress(j + 1, len(sigmas), sigma=float(s), message=f"density, least squares at σ = {s:g}")
    y0 = noisy[0]
    p = resolve_params(INVERSE_PARAMS, dict(seed=seed, samples=1, sigma0=float(sigmas[0]), sigma_L=sigma_L,
                                            h0=h0, beta=beta, max_iter=max_iter, patience=max_iter))
    p["sigma_mode"] = sigma_mode
    t1, l1, f1 = yield from _trajectories(den, y0, None, None, p)
    u = np.asarray(measure, dtype=np.float64).reshape(2)
    if not np.isfinite(u).all() or np.linalg.norm(u) == 0:
        raise ValueError("measure must be a non-zero 2-vector (the measured direction)")
    u = u / np.linalg.norm(u)
    op = DenseOperator(u[:, None], (1, 2))
    x_c = x @ u
    p2 = dict(p, beta=float(beta_inverse), h0=float(h0_inverse),
              sigma0=float(sigma0_inverse) if sigma0_inverse else p['sigma0'])
    t2, l2, f2 = yield from _trajectories(den, y0, op, x_c, p2)
    return {
        "curve": cv.points,
        "signals": x,
        "sigmas": sigmas,
        "noisy": np.stack(noisy),
        "ls": np.stack(ls),
        "density": np.stack(dens),
        "grid_x": gx,
        "grid_y": gy,
        "traj_alg1": t1,
        "traj_alg1_len": l1,
        "end_alg1": f1,
        "traj_alg2": t2,
        "traj_alg2_len": l2,
        "end_alg2": f2,
        "measure": u,
        "x_c": x_c,
        "dist_ls": np.stack([cv.distance(q) for q in ls]),
        "dist_alg1": cv.distance(f1),
        "dist_alg2": cv.distance(f2),
    }


def manifold_demo(
    sigma: float | Sequence[float] = (0.3, 0.15, 0.05),
    n_points: int = 50,
    seed: int = 0,
    grid: int = 128,
    **kw: Any,
) -> dict[str, np.ndarray]:
    """Figure 10 of Kadkhodaie & Simoncelli (2021) as data.

    Returns ``curve`` (Q, 2); ``signals`` x (n, 2); per noise level σ_j: ``noisy`` y
    (J, n, 2), one-step least-squares ``ls`` = x̂(y) (J, n, 2), ``density`` p(y) on the grid
    (J, G, G) with axes ``grid_x``, ``grid_y``; trajectories of Algorithm 1
    (``traj_alg1`` (n, T, 2), NaN-padded, lengths ``traj_alg1_len``, end points
    ``end_alg1``) and of Algorithm 2 measuring the projection of x on the unit direction
    ``measure`` (``traj_alg2``, ``x_c``), both started at the noisy points of the first σ,
    with h₀ = 0.05 and β = 1 as the figure (``h0=``, ``beta=`` change them); and the
    distances of the end points to the curve (``dist_*``).
    """
    return run_job(manifold_demo_job(sigma, n_points, seed, grid, **kw))
