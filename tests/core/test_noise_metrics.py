"""restorelab.noise and restorelab.metrics."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from restorelab.metrics import psnr, ssim
from restorelab.noise import add_gaussian_noise


def test_noise_is_reproducible_unclipped_and_has_sigma(camera_small):
    s = 25 / 255
    y1 = add_gaussian_noise(camera_small, s, seed=3)
    y2 = add_gaussian_noise(camera_small, s, seed=3)
    y3 = add_gaussian_noise(camera_small, s, seed=4)
    assert y1.dtype == np.float32 and y1.shape == camera_small.shape
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(y1, y3)
    n = y1 - camera_small
    assert abs(n.std() - s) < 0.03 * s
    assert abs(n.mean()) < 3 * s / 128
    assert y1.min() < 0 or y1.max() > 1  # not clipped


def test_noise_generator_is_advanced_and_input_kept(astronaut_small):
    x0 = astronaut_small.copy()
    g = np.random.default_rng(0)
    a = add_gaussian_noise(astronaut_small, 0.1, seed=g)
    b = add_gaussian_noise(astronaut_small, 0.1, seed=g)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(astronaut_small, x0)
    np.testing.assert_array_equal(add_gaussian_noise(astronaut_small, 0.0, seed=1), astronaut_small)


def test_noise_spares_alpha():
    x = np.full((16, 16, 4), 0.5, np.float32)
    y = add_gaussian_noise(x, 0.2, seed=0)
    np.testing.assert_array_equal(y[..., 3], x[..., 3])
    assert y[..., :3].std() > 0.1


@pytest.mark.parametrize(
    "x,sigma,exc",
    [(np.zeros((4, 4)), -0.1, ValueError), (np.zeros((4, 4)), float("nan"), ValueError),
     (np.zeros((4, 4)), "a", TypeError), ([[0.0]], 0.1, TypeError), (np.zeros(4), 0.1, ValueError),
     (np.full((4, 4), np.nan), 0.1, ValueError)],
)
def test_noise_bad_input(x, sigma, exc):
    with pytest.raises(exc):
        add_gaussian_noise(x, sigma, seed=0)


def test_psnr_matches_formula(camera_small):
    y = add_gaussian_noise(camera_small, 25 / 255, seed=0)
    mse = float(np.mean((y.astype(np.float64) - camera_small) ** 2))
    assert psnr(camera_small, y) == pytest.approx(10 * np.log10(1 / mse), abs=1e-6)
    assert psnr(camera_small, y) == pytest.approx(20.17, abs=0.3)  # σ = 25 → 20·log10(255/25)
    assert psnr(camera_small, camera_small) == float("inf")
    assert psnr(camera_small * 255, y * 255, data_range=255) == pytest.approx(psnr(camera_small, y), abs=1e-6)


def test_ssim_gray_and_colour(camera_small, astronaut_small):
    assert ssim(camera_small, camera_small) == pytest.approx(1.0)
    y = add_gaussian_noise(camera_small, 0.1, seed=0)
    s = ssim(camera_small, y)
    assert 0 < s < 0.8
    yc = add_gaussian_noise(astronaut_small, 0.1, seed=0)
    ref = np.mean([structural_similarity(astronaut_small[..., c], yc[..., c], data_range=1.0)
                   for c in range(3)])
    assert ssim(astronaut_small, yc) == pytest.approx(ref, abs=1e-6)


def test_metrics_bad_input(camera_small):
    with pytest.raises(ValueError, match="shape"):
        psnr(camera_small, camera_small[:10])
    with pytest.raises(ValueError, match="NaN"):
        ssim(camera_small, np.full_like(camera_small, np.nan))
    with pytest.raises(TypeError):
        psnr(camera_small, "x")
