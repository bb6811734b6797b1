"""Perona–Malik anisotropic diffusion (restorelab.denoise.perona_malik)."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from restorelab import denoise
from restorelab.denoise.heat import heat_explicit
from restorelab.denoise.perona_malik import (
    default_iterations,
    perona_malik,
    perona_malik_iterations,
    pm_energy,
)


def noisy(x: np.ndarray, s: float, seed: int = 0) -> np.ndarray:
    return (x + np.random.default_rng(seed).normal(0, s / 255, x.shape)).astype(np.float32)


def hwc_to_batch(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


@pytest.mark.parametrize("conductance", ["exp", "rational"])
def test_infinite_k_is_the_explicit_heat_equation(conductance):
    rng = np.random.default_rng(0)
    u = rng.random((20, 27, 3))
    out = perona_malik(hwc_to_batch(u), 1e9, 12, dt=0.2, conductance=conductance)
    ref = heat_explicit(u, 12 * 0.2, dt=0.2)
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), ref, atol=1e-12)
    # a finite K is not the heat equation
    out_k = perona_malik(hwc_to_batch(u), 0.1, 12, dt=0.2, conductance=conductance)
    assert np.abs(out_k[0].permute(1, 2, 0).numpy() - ref).max() > 1e-2


@pytest.mark.parametrize("conductance", ["exp", "rational"])
def test_mean_is_preserved_and_max_principle_holds(camera_small, conductance):
    y = noisy(camera_small, 25)
    out = denoise.get("perona_malik", conductance=conductance, iterations=40, dt=0.25)(y, 25 / 255)
    assert abs(float(out.astype(np.float64).mean()) - float(y.astype(np.float64).mean())) < 1e-6
    assert out.min() >= y.min() - 1e-6 and out.max() <= y.max() + 1e-6


@pytest.mark.parametrize("conductance", ["exp", "rational"])
def test_energy_descends(camera_small, conductance):
    """The scheme is gradient descent on Σ Φ(|∇_d u|); with dt ≤ 1/4 the energy decreases."""
    u0 = torch.from_numpy(noisy(camera_small[:48, :48], 25)).double()[None, None]
    k = 0.05
    energies = [float(pm_energy(u, k, conductance)) for _, u in
                perona_malik_iterations(u0, k, 30, dt=0.2, conductance=conductance)]
    e = np.array([float(pm_energy(u0, k, conductance))] + energies)
    assert np.all(np.diff(e) < 0)


@pytest.mark.parametrize("conductance", ["exp", "rational"])
@pytest.mark.parametrize("s", [15, 25, 50])
def test_defaults_beat_the_noisy_input(camera_small, conductance, s):
    y = noisy(camera_small, s, seed=s)
    x_hat = denoise.get("perona_malik", conductance=conductance)(y, s / 255)
    p_noisy = peak_signal_noise_ratio(camera_small, y, data_range=1)
    p_hat = peak_signal_noise_ratio(camera_small, x_hat, data_range=1)
    assert p_hat > p_noisy + 2.0, (p_noisy, p_hat)


def test_colour_torch_and_progress(astronaut_small):
    y = noisy(astronaut_small, 25)
    d = denoise.get("perona_malik", device="cpu")
    events = []
    out = d(y, 25 / 255, on_progress=events.append)
    assert out.shape == y.shape and out.dtype == np.float32
    p_noisy = peak_signal_noise_ratio(astronaut_small, y, data_range=1)
    assert peak_signal_noise_ratio(astronaut_small, out, data_range=1) > p_noisy + 4.0
    assert events[-1].step == events[-1].total and "energy" in events[-1].data
    t = torch.from_numpy(y).permute(2, 0, 1).contiguous()
    tout = d(t, 25 / 255)
    assert isinstance(tout, torch.Tensor)
    np.testing.assert_allclose(tout.permute(1, 2, 0).numpy(), out, atol=1e-6)
    bout = d.denoise_tensor(torch.stack([t, t]), 25 / 255)
    assert bout.shape == (2, *t.shape) and torch.allclose(bout[1], tout, atol=1e-6)
    assert np.array_equal(y, noisy(astronaut_small, 25))  # input untouched


def test_defaults_follow_the_conductance_and_explicit_values_win(camera_small):
    y = noisy(camera_small, 25)
    t = torch.from_numpy(y)[None, None]
    # exp without K / iterations: K = 2.2σ and 2 + 40σ steps
    got = denoise.get("perona_malik", conductance="exp")(y, 0.1)
    ref = perona_malik(t, 0.22, default_iterations(0.1, "exp"), dt=0.2, conductance="exp")
    np.testing.assert_allclose(got, ref[0, 0].numpy(), atol=1e-6)
    # an explicit K is used as given
    got_k = denoise.get("perona_malik", conductance="exp", K=0.08, iterations=7)(y, 0.1)
    ref_k = perona_malik(t, 0.08, 7, dt=0.2, conductance="exp")
    np.testing.assert_allclose(got_k, ref_k[0, 0].numpy(), atol=1e-6)
    # presmoothing (Catté et al.) changes the result
    b = denoise.get("perona_malik", presmooth=1.0)(y, 0.1)
    assert np.abs(b - denoise.get("perona_malik")(y, 0.1)).max() > 1e-3


def test_bad_inputs():
    with pytest.raises(ValueError):
        perona_malik(torch.zeros(1, 1, 4, 4), 0.1, 3, dt=0.3)
    with pytest.raises(ValueError):
        perona_malik(torch.zeros(1, 1, 4, 4), 0.1, 3, conductance="tukey")
    with pytest.raises(ValueError):
        perona_malik(torch.zeros(1, 1, 4, 4), 0.0, 3)
    with pytest.raises(ValueError):
        perona_malik(torch.zeros(4, 4), 0.1, 3)
