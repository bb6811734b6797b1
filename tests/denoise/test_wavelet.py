"""Wavelet shrinkage: perfect reconstruction at λ = 0, denoising quality vs scikit-image."""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio as psnr

from restorelab import denoise
from restorelab.denoise.wavelet import bayes_threshold, from_opponent, soft_threshold, to_opponent
from restorelab.jobs import Progress

SIGMA = 25 / 255


def _noisy(x: np.ndarray, seed: int = 1) -> np.ndarray:
    return (x + SIGMA * np.random.default_rng(seed).standard_normal(x.shape)).astype(np.float32)


@pytest.mark.parametrize("transform", ["swt", "dwt"])
@pytest.mark.parametrize("shape", [(37, 53), (40, 33, 3)])
def test_zero_threshold_is_perfect_reconstruction(transform: str, shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    d = denoise.get("wavelet", rule="fixed", threshold=0.0, transform=transform, wavelet="db4", shifts=2)
    out = d(x, SIGMA)
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_soft_threshold_and_bayes_rule() -> None:
    c = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(soft_threshold(c, 1.0), [-2.0, 0.0, 0.0, 0.0, 2.0])
    # pure noise: σ_x = 0 → infinite threshold, everything killed
    assert np.isinf(bayes_threshold(np.zeros((4, 4, 1)), 0.1)).all()
    rgb = np.random.default_rng(0).random((5, 6, 3))
    np.testing.assert_allclose(from_opponent(to_opponent(rgb)), rgb, atol=1e-12)


def test_beats_noisy_input_and_skimage_bayesshrink(camera_small: np.ndarray) -> None:
    from skimage.restoration import denoise_wavelet

    y = _noisy(camera_small)
    ours = denoise.get("wavelet")(y, SIGMA)
    ref = denoise_wavelet(y, sigma=SIGMA, method="BayesShrink", mode="soft", rescale_sigma=True)
    p_noisy, p_ours, p_ref = (psnr(camera_small, a, data_range=1.0) for a in (y, ours, ref))
    assert p_ours > p_noisy + 5.0
    assert p_ours > p_ref + 0.3, (p_ours, p_ref)


def test_colour_and_cycle_spinning_help(astronaut_small: np.ndarray) -> None:
    x = astronaut_small
    y = _noisy(x, seed=2)
    p_noisy = psnr(x, y, data_range=1.0)
    p_opp = psnr(x, denoise.get("wavelet")(y, SIGMA), data_range=1.0)
    p_rgb = psnr(x, denoise.get("wavelet", color="rgb")(y, SIGMA), data_range=1.0)
    assert p_opp > p_noisy + 4.0
    assert p_opp > p_rgb  # decorrelated colour space is better than per-RGB shrinkage
    one = denoise.get("wavelet", transform="dwt", shifts=1)(y, SIGMA)
    spun = denoise.get("wavelet", transform="dwt", shifts=4)(y, SIGMA)
    assert psnr(x, spun, data_range=1.0) > psnr(x, one, data_range=1.0) + 0.5


def test_cycle_spinning_job_yields_progress_and_keeps_input(camera_small: np.ndarray) -> None:
    y = _noisy(camera_small[:64, :64])
    y0 = y.copy()
    events: list[Progress] = []
    denoise.get("wavelet", transform="dwt", shifts=3)(y, SIGMA, on_progress=events.append)
    assert sum(e.total == 9 for e in events) == 9
    np.testing.assert_array_equal(y, y0)


def test_rules_differ_and_bad_params() -> None:
    from restorelab.params import ParamError

    with pytest.raises(ParamError):
        denoise.get("wavelet", wavelet="bior2.2")
    x = np.random.default_rng(3).random((32, 32)).astype(np.float32)
    a = denoise.get("wavelet", rule="visu")(x, SIGMA)
    b = denoise.get("wavelet", rule="bayes")(x, SIGMA)
    assert not np.allclose(a, b)
    with pytest.raises(ValueError):
        denoise.get("wavelet")(np.full((8, 8), np.nan, np.float32), SIGMA)
