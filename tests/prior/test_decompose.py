"""Multiscale decomposition (Milanfar & Delbracio 2024): layers of repeated denoising, and their gains."""

from __future__ import annotations

import numpy as np
import pytest

from restorelab import denoise
from restorelab.jobs import Cancelled, CancelToken, run_job
from restorelab.prior import Decomposition, decompose, decompose_job

from .helpers import GaussianPriorDenoiser

#: the cheapest settings of the slow methods (the layers are checked against the same settings)
_CHEAP = {"nlm": {"search": 7}, "sparse": {"atoms": 64, "stride": 2}, "tv": {"max_iter": 20}}


@pytest.mark.parametrize("name", denoise.names())
def test_layers_are_what_the_denoiser_does(name, camera_small):
    """r_0 = x − D(x), r_1 = D(x) − D(D(x)), base = D(D(x)), with D applied independently (an
    8-bit input is read as x/255 by both)."""
    x8 = np.rint(camera_small[40:64, 40:64] * 255).astype(np.uint8)
    x0 = x8.copy()
    d = denoise.get(name, device="cpu", **_CHEAP.get(name, {}))
    s = 30 / 255
    dec = decompose(x8, d, levels=2, sigma=s)
    x = x8.astype(np.float32) / 255
    d1 = d(x, s)
    d2 = d(d1, s)
    assert dec.levels == 2 and dec.base.shape == x.shape and dec.base.dtype == np.float32
    np.testing.assert_allclose(dec.residuals[0], x - d1, atol=1e-5, rtol=0)
    np.testing.assert_allclose(dec.residuals[1], d1 - d2, atol=1e-5, rtol=0)
    np.testing.assert_allclose(dec.base, d2, atol=1e-5, rtol=0)
    assert np.abs(dec.residuals[0]).mean() > 1e-3  # the denoiser did act: the finest layer is not empty
    assert dec.meta["method"] == name and dec.meta["sigma"] == pytest.approx(s)
    np.testing.assert_array_equal(x8, x0)  # input untouched


def test_colour_and_gains(astronaut_small):
    x = astronaut_small[:32, :32]
    den = GaussianPriorDenoiser(mu=0.5, s=0.2)
    dec = decompose(x, den, levels=4, sigma=0.2)
    np.testing.assert_allclose(dec.recompose([1, 1, 1, 1]), x, atol=1e-5)
    # the exact MMSE of a Gaussian prior shrinks towards mu by g = s²/(s²+σ²) per level
    g = 0.2**2 / (0.2**2 + 0.2**2)
    np.testing.assert_allclose(dec.base, 0.5 + g**4 * (x - 0.5), atol=1e-5)
    np.testing.assert_allclose(dec.recompose(0.0), dec.base, atol=1e-6)
    boosted = dec.recompose([2.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(boosted - x, dec.residuals[0], atol=1e-5)
    with pytest.raises(ValueError):
        dec.recompose([1.0, 2.0])


def test_bad_input_and_cancel():
    den = GaussianPriorDenoiser()
    with pytest.raises(ValueError):
        decompose(np.full((8, 8), np.nan, np.float32), den, 2, 0.1)
    with pytest.raises(ValueError):
        decompose(np.zeros((8, 8), np.float32), den, 0, 0.1)
    tok = CancelToken()
    seen = []

    def on(ev):
        seen.append(ev)
        tok.cancel()

    with pytest.raises(Cancelled):
        run_job(decompose_job(np.zeros((8, 8), np.float32), den, 5, 0.1), cancel=tok, on_progress=on)
    assert len(seen) == 1 and den.calls <= 1


def test_decomposition_is_plain_data():
    d = Decomposition(np.zeros((2, 2), np.float32), [np.ones((2, 2), np.float32)])
    np.testing.assert_array_equal(d.recompose([3.0]), np.full((2, 2), 3.0))
