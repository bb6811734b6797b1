"""Heat equation / Gaussian filtering (restorelab.denoise.heat)."""

import numpy as np
import pytest
from scipy.fft import dctn, idctn
from skimage.metrics import peak_signal_noise_ratio

from restorelab import denoise
from restorelab.denoise.heat import heat_explicit, heat_gaussian
from restorelab.jobs import Cancelled, CancelToken


def smooth_image(n: int = 96, seed: int = 0) -> np.ndarray:
    """A sum of wide Gaussian bumps (widths 10–16 px), rescaled to [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    u = np.zeros((n, n))
    for _ in range(6):
        cy, cx = rng.uniform(0.2 * n, 0.8 * n, 2)
        w = rng.uniform(10, 16)
        u += rng.uniform(-1, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * w * w))
    return (u - u.min()) / (u.max() - u.min())


def test_heat_at_time_t_equals_gaussian_of_std_sqrt_2t_away_from_border():
    u = smooth_image()
    t = 2.0
    pde = heat_explicit(u, t, dt=0.05)
    filt = denoise.get("heat", t=t)(u, sigma=0.1)
    b = 16
    err = np.abs(pde - filt)[b:-b, b:-b].max()
    assert err < 1e-4, err
    # and it is not trivially true: a Gaussian of a different std is far away
    other = heat_gaussian(u, 1.5 * t)
    assert np.abs(pde - other)[b:-b, b:-b].max() > 1e-3


def test_explicit_scheme_matches_its_exact_dct_solution():
    """n Euler steps of the Neumann 5-point scheme are (1 - h·λ_k)^n in the DCT-II basis."""
    rng = np.random.default_rng(1)
    u = rng.random((20, 28))
    t, dt = 1.3, 0.2
    n = int(np.ceil(t / dt))
    h = t / n
    ky = 4 * np.sin(np.pi * np.arange(20) / 40) ** 2
    kx = 4 * np.sin(np.pi * np.arange(28) / 56) ** 2
    lam = ky[:, None] + kx[None, :]
    ref = idctn(dctn(u, norm="ortho") * (1 - h * lam) ** n, norm="ortho")
    np.testing.assert_allclose(heat_explicit(u, t, dt), ref, atol=1e-12)


def test_mean_is_preserved_and_colour_channels_are_independent(astronaut_small):
    x = astronaut_small
    out = denoise.get("heat", t=3.0, scheme="explicit")(x, 0.1)
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(0, 1)), x.mean(axis=(0, 1)), atol=1e-5)
    single = denoise.get("heat", t=3.0, scheme="explicit")(x[:, :, 1], 0.1)
    np.testing.assert_allclose(out[:, :, 1], single, atol=1e-6)


def test_gaussian_alias_is_heat_with_t_equal_std_squared_over_two(camera_small):
    a = denoise.get("gaussian", std=2.0)(camera_small, 0.1)
    b = denoise.get("heat", t=2.0)(camera_small, 0.1)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("s", [15, 25, 50])
def test_defaults_beat_the_noisy_input(camera_small, s):
    sigma = s / 255
    rng = np.random.default_rng(s)
    y = (camera_small + rng.normal(0, sigma, camera_small.shape)).astype(np.float32)
    x_hat = denoise.get("heat")(y, sigma)
    p_noisy = peak_signal_noise_ratio(camera_small, y, data_range=1)
    p_hat = peak_signal_noise_ratio(camera_small, x_hat, data_range=1)
    assert p_hat > p_noisy + 2.0, (p_noisy, p_hat)


def test_explicit_job_reports_progress_and_cancels(camera_small):
    d = denoise.get("heat", t=2.0, scheme="explicit", dt=0.25)
    events = []
    d(camera_small, 0.1, on_progress=events.append)
    assert events[-1].step == events[-1].total == 8
    energy = [ev.data["energy"] for ev in events]
    assert all(b < a for a, b in zip(energy, energy[1:], strict=False))  # ½‖∇u‖² decreases
    token = CancelToken()

    def stop(ev):
        if ev.step >= 2:
            token.cancel()

    with pytest.raises(Cancelled):
        d(camera_small, 0.1, cancel=token, on_progress=stop)


def test_bad_inputs():
    with pytest.raises(ValueError):
        heat_explicit(np.zeros((8, 8)), 1.0, dt=0.3)
    with pytest.raises(ValueError):
        heat_gaussian(np.full((8, 8), np.nan), 1.0)
    with pytest.raises(ValueError):
        heat_gaussian(np.zeros((8, 8)), -1.0)
    with pytest.raises(ValueError):
        denoise.get("heat")(np.zeros((4, 4, 2)), 0.1)


def test_gaussian_in_row_strips_equals_one_call(monkeypatch):
    """Large images are filtered in strips (short GIL-holding calls); the result is the
    whole-image filter exactly, boundaries included."""
    from scipy import ndimage

    from restorelab.denoise import heat as heat_mod

    rng = np.random.default_rng(3)
    a = rng.random((97, 41, 3), dtype=np.float32)
    monkeypatch.setattr(heat_mod, "STRIP_PIXELS", 100)
    monkeypatch.setattr(heat_mod, "STRIP_ROWS", 16)
    for t, boundary in ((2.0, "reflect"), (8.0, "mirror"), (0.5, "nearest"), (3.0, "wrap")):
        s = np.sqrt(2 * t)
        ref = ndimage.gaussian_filter(a, sigma=(s, s, 0.0), mode=boundary, truncate=6.0)
        np.testing.assert_array_equal(heat_mod.heat_gaussian(a, t, boundary=boundary), ref)
