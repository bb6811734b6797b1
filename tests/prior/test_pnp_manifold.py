"""Plug-and-play / RED solvers and the 2-D manifold demonstration."""

from __future__ import annotations

import numpy as np
import pytest

from restorelab.jobs import run_job
from restorelab.metrics import psnr
from restorelab.prior import PNP_METHODS, operators, pnp_job
from restorelab.prior.manifold import Curve, ManifoldDenoiser, manifold_demo, manifold_demo_job

from .helpers import SmoothSubspaceDenoiser, smooth_image


@pytest.mark.parametrize("method", PNP_METHODS)
def test_pnp_recovers_smooth_image(method):
    x = smooth_image(16, 16)
    op = operators.random_pixels(x.shape, 0.3, seed=0)
    start = op.proj(x) + 0.5 * (1 - op.proj(np.ones_like(x)))
    res = run_job(pnp_job(SmoothSubspaceDenoiser(k=1), op, x, method=method, iters=20, device="cpu"))
    assert res.consistency < 1e-5
    assert psnr(x, res.image) > 35 and psnr(x, res.image) > psnr(x, start) + 15
    assert len(res.log) == 20


def test_pnp_noisy_measurements_and_bad_method():
    x = smooth_image(16, 16)
    op = operators.make("sr", x.shape, factor=4)
    res = run_job(pnp_job(SmoothSubspaceDenoiser(k=1), op, x, method="pnp-hqs", noise=0.05, iters=20,
                          device="cpu"))
    assert psnr(x, res.image) > 30
    from restorelab.params import ParamError

    with pytest.raises(ParamError):
        run_job(pnp_job(SmoothSubspaceDenoiser(), op, x, method="admm"))


def test_exact_mmse_denoiser_on_curve():
    cv = Curve("arc", q=4000)
    den = ManifoldDenoiser(cv)
    y = np.array([[0.0, 0.0], [0.8, 0.0], [0.0, 0.9]])
    # small σ: x̂ projects onto the circle of radius 0.8; the centre stays the (symmetric) mean
    xh = den.mmse(y[1:], 0.01)
    np.testing.assert_allclose(np.linalg.norm(xh, axis=1), 0.8, atol=1e-3)
    # huge σ: the prior mean
    np.testing.assert_allclose(den.mmse(y[:1], 100.0)[0], cv.points.mean(0), atol=1e-6)
    # p(y) integrates to ~1 over a grid wide enough
    g = np.linspace(-2, 2, 201)
    p = den.density(g, g, 0.1)
    assert abs(p.sum() * (g[1] - g[0]) ** 2 - 1) < 1e-3


def test_manifold_demo_trajectories_end_on_manifold():
    d = manifold_demo(n_points=50, seed=0, grid=16)
    assert d["density"].shape == (3, 16, 16) and d["noisy"].shape == (3, 50, 2)
    # Algorithm 1 with the figure's h0 = 0.05, β = 1: every trajectory ends on the curve
    assert d["dist_alg1"].max() < 0.05
    # ... whereas one-step least-squares solutions at the largest σ fall inside the hull
    assert np.median(d["dist_ls"][0]) > 0.1
    lens = d["traj_alg1_len"]
    for i in range(50):
        traj = d["traj_alg1"][i]
        assert np.isfinite(traj[: lens[i]]).all() and np.isnan(traj[lens[i]:]).all()
        np.testing.assert_allclose(traj[0], d["noisy"][0][i])
    # Algorithm 2 satisfies its measurement exactly; most trajectories end on the curve
    np.testing.assert_allclose(d["end_alg2"] @ d["measure"], d["x_c"], atol=1e-6)
    assert np.mean(d["dist_alg2"] < 0.05) >= 0.9


def test_manifold_job_progress_and_bad_input():
    evs = []
    d = run_job(manifold_demo_job(sigma=0.2, n_points=5, grid=4, curve="wave"), on_progress=evs.append)
    assert evs and all(e.step >= 1 for e in evs)
    assert evs[0].sigma == pytest.approx(0.2) and "σ = 0.2" in evs[0].message  # the density stage first
    later = [e.sigma for e in evs[1:] if e.sigma is not None]
    assert later and min(later) < 0.05  # the ascent's σ_t falls from σ₀ = 0.2 towards σ_L
    assert d["density"].shape == (1, 4, 4) and d["noisy"].shape == (1, 5, 2) and d["end_alg1"].shape == (5, 2)
    np.testing.assert_allclose(d["traj_alg1"][:, 0], d["noisy"][0])  # trajectories start at the noisy points
    assert d["dist_alg1"].max() < 0.05  # every trajectory of Algorithm 1 ends on the wave
    np.testing.assert_allclose(d["end_alg2"] @ d["measure"], d["x_c"], atol=1e-6)  # Algorithm 2: exact
    with pytest.raises(ValueError):
        manifold_demo(sigma=-1.0)
    with pytest.raises(ValueError):
        manifold_demo(curve="knot")
