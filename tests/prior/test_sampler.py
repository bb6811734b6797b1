"""Algorithms 1 and 2 (Kadkhodaie & Simoncelli 2021) with analytic denoisers."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from restorelab.denoise.base import Denoiser
from restorelab.jobs import Cancelled, CancelToken, run_job
from restorelab.prior import INVERSE_PARAMS, SAMPLER_PARAMS, inverse_job, operators, sample_job, step_size

from .helpers import GaussianPriorDenoiser, SmoothSubspaceDenoiser, smooth_image


def test_step_size_formula():
    h0 = 0.01
    assert step_size(1, h0) == pytest.approx(h0)
    assert step_size(2, h0) == pytest.approx(2 * h0 / (1 + h0))
    t = np.arange(1, 5000)
    h = step_size(t, h0)
    assert np.all(np.diff(h) > 0) and h[-1] < 1 and h[-1] > 0.97


def test_params_declared():
    names = {p.name for p in SAMPLER_PARAMS}
    assert {"seed", "samples", "sigma0", "sigma_L", "h0", "beta", "max_iter", "clip"} <= names
    beta = {p.name: p.default for p in SAMPLER_PARAMS}["beta"]
    beta2 = {p.name: p.default for p in INVERSE_PARAMS}["beta"]
    assert (beta, beta2) == (0.5, 0.01)


def test_algorithm1_converges_blind():
    den = SmoothSubspaceDenoiser(k=2)
    res = run_job(sample_job(den, shape=(16, 16), samples=2, seed=1, device="cpu"))
    assert res.converged, res.message
    # loop while σ_{t-1} > σ_L: the last σ_t is the first one at or under σ_L
    assert res.log[-1][1] <= 0.01 < res.log[-2][1]
    assert [r[0] for r in res.log] == list(range(1, res.iterations + 1))
    assert res.log[0][2] == pytest.approx(0.01)
    for s in res.samples:  # samples lie in the denoiser's subspace
        t = torch.from_numpy(s)[None, None]
        assert float((den._proj(t) - t).abs().max()) < 1e-4
    assert res.std.shape == (16, 16) and res.std.max() > 0
    assert 1 <= len(res.frames) <= 48


def test_algorithm1_gaussian_prior_statistics_and_colour():
    den = GaussianPriorDenoiser(mu=0.5, s=0.1)
    res = run_job(sample_job(den, shape=(32, 32), channels=3, seed=0, device="cpu"))
    assert res.converged
    x = res.samples[0]
    assert x.shape == (32, 32, 3)
    # a sample of N(0.5, 0.1²): mean and spread within a loose band
    assert abs(float(x.mean()) - 0.5) < 0.02
    assert 0.05 < float(x.std()) < 0.15


@pytest.mark.parametrize("task", operators.TASKS)
def test_algorithm2_measurements_exact(task):
    x = smooth_image(16, 16)
    op = operators.make(task, x.shape, **({"box": 6} if task == "inpaint" else {}))
    res = run_job(inverse_job(SmoothSubspaceDenoiser(k=2), op, x, seed=0, beta=0.1, device="cpu"))
    assert res.converged, res.message
    assert res.consistency is not None and res.consistency < 1e-5
    np.testing.assert_allclose(op.Mt(res.samples[0]), op.Mt(x), atol=1e-5)


def test_algorithm2_k_samples_mean_std_and_quality():
    x = smooth_image(16, 16)
    op = operators.random_pixels(x.shape, 0.3, seed=0)
    den = GaussianPriorDenoiser(mu=0.5, s=0.15)
    res = run_job(inverse_job(den, op, x, samples=4, seed=2, device="cpu"))
    assert res.converged and len(res.samples) == 4
    # measured pixels are exact and certain; missing ones vary between samples
    np.testing.assert_allclose(res.mean[op.measured], x[op.measured], atol=1e-6)
    assert res.std[op.measured].max() < 1e-6 and res.std[~op.measured].mean() > 0.02
    # the mean of samples is a better estimate than a single sample
    err1 = np.mean((res.samples[0] - x) ** 2)
    errm = np.mean((res.mean - x) ** 2)
    assert errm < err1
    # measurements given as x_c give the same result as the image
    res2 = run_job(inverse_job(den, op, x_c=op.Mt(x), samples=4, seed=2, device="cpu"))
    np.testing.assert_allclose(res2.mean, res.mean, atol=1e-6)


def test_reproducible_from_seed():
    x = smooth_image(16, 16)
    op = operators.make("sr", x.shape, factor=4)
    den = GaussianPriorDenoiser()
    a = run_job(inverse_job(den, op, x, seed=5, device="cpu"))
    b = run_job(inverse_job(den, op, x, seed=5, device="cpu"))
    c = run_job(inverse_job(den, op, x, seed=6, device="cpu"))
    np.testing.assert_array_equal(a.samples[0], b.samples[0])
    assert a.log == b.log
    assert np.abs(a.samples[0] - c.samples[0]).max() > 1e-3


def test_clip_and_preview():
    den = GaussianPriorDenoiser(mu=0.5, s=0.6)
    evs = []
    res = run_job(sample_job(den, shape=(8, 8), seed=0, clip=True, preview_every=3, device="cpu"),
                  on_progress=evs.append)
    assert res.samples[0].min() >= 0 and res.samples[0].max() <= 1
    with_preview = [e.step for e in evs[:-1] if e.preview is not None]
    assert with_preview[:3] == [1, 3, 6]
    assert all(e.sigma is not None and e.h is not None for e in evs)


class _Offset(Denoiser):
    """A residual that never vanishes: x̂(y) = y + 0.05 (σ_t stalls at 0.05)."""

    name: ClassVar[str] = "test-offset"
    torch_native: ClassVar[bool] = True

    def _denoise_tensor(self, y: Any, sigma: Any) -> Any:
        return y + 0.05


def test_stall_and_cap_messages():
    res = run_job(sample_job(_Offset(), shape=(8, 8), patience=10, device="cpu"))
    assert not res.converged and "stopped decreasing" in res.message and res.iterations < 100
    res = run_job(sample_job(GaussianPriorDenoiser(), shape=(8, 8), max_iter=5, device="cpu"))
    assert not res.converged and "iteration cap" in res.message and res.iterations == 5
    res = run_job(sample_job(_Amplify(), shape=(8, 8), device="cpu"))
    assert not res.converged and "diverging" in res.message and res.iterations < 200


class _Amplify(Denoiser):
    """Over-estimates the noise: x̂(y) = 0.5 − 2 (y − 0.5), a residual of 3× the deviation."""

    name: ClassVar[str] = "test-amplify"
    torch_native: ClassVar[bool] = True

    def _denoise_tensor(self, y: Any, sigma: Any) -> Any:
        return 0.5 - 2.0 * (y - 0.5)


def test_cancel_within_one_iteration():
    den = GaussianPriorDenoiser()
    tok = CancelToken()
    steps = []

    def on(ev):
        steps.append(ev.step)
        if ev.step == 3:
            tok.cancel()

    job = inverse_job(den, operators.make("pixels", (16, 16)), smooth_image(16, 16), device="cpu")
    with pytest.raises(Cancelled):
        run_job(job, cancel=tok, on_progress=on)
    assert steps == [1, 2, 3]
    assert den.calls == 3  # no further denoiser call after the cancel
    with pytest.raises(StopIteration):  # a closed job is finished: nothing comes out of it
        next(job)


def test_bad_inputs():
    den = GaussianPriorDenoiser()
    op = operators.make("pixels", (8, 8))
    with pytest.raises(ValueError):
        run_job(inverse_job(den, op, np.full((8, 8), np.nan, np.float32), device="cpu"))
    with pytest.raises(ValueError):
        run_job(inverse_job(den, op, np.zeros(5, np.float32), device="cpu"))
    with pytest.raises(ValueError):
        run_job(inverse_job(den, op, None, device="cpu"))
    with pytest.raises(TypeError):
        run_job(inverse_job(den, "sr", np.zeros((8, 8)), device="cpu"))
    with pytest.raises(ValueError):
        run_job(sample_job(den, shape=(8, 8), channels=2, device="cpu"))
    from restorelab.params import ParamError

    with pytest.raises(ParamError):
        run_job(sample_job(den, shape=(8, 8), beta=0.0, device="cpu"))
