"""The classical answers of `bench indi` are what they claim to be (synthetic images only)."""

from __future__ import annotations

import numpy as np

from restorelab.bench.indi import bicubic_operator, blur_operator_data, hf_ratio, psf2otf, wiener_best
from restorelab.indi import degrade
from restorelab.metrics import psnr


def test_bicubic_operator_reproduces_the_low_resolution_image() -> None:
    x = np.random.default_rng(0).random((32, 40, 3)).astype(np.float32)
    low = degrade.downsample4(x)
    op, measure = bicubic_operator(32, 40)
    back = np.asarray(op.M(measure(low)))  # the minimum-norm image with these measurements
    np.testing.assert_allclose(degrade.downsample4(back.astype(np.float32)), low, atol=1e-4)


def test_blur_measurements_are_the_kept_band_of_the_clean_image() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((32, 32, 3))
    k = degrade.gaussian_kernel(1.5, 1.0, 0.4)
    K = psf2otf(k, (32, 32))
    y = np.real(np.fft.ifft2(np.fft.fft2(x, axes=(0, 1)) * K[:, :, None], axes=(0, 1)))  # circular blur
    op, z = blur_operator_data(y, k)
    assert 0 < op.m < 32 * 32
    want = np.stack([np.asarray(op.Mt(x[:, :, c].astype(np.float32))) for c in range(3)])
    got = np.stack([np.asarray(op.Mt(z[:, :, c])) for c in range(3)])
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_wiener_with_the_true_kernel_deblurs_and_sharpness_ranks_blur() -> None:
    from skimage import data

    x = (data.astronaut()[100:196, 200:296] / 255.0).astype(np.float32)
    k = degrade.gaussian_kernel(1.5, 1.5, 0.0)
    y = degrade.blur(x, k)
    z, bal = wiener_best(y, k, x)
    assert psnr(x, z) > psnr(x, y) + 1.0
    assert bal in (1e-3, 1e-2, 1e-1)
    assert hf_ratio(y, x) < 0.5 * hf_ratio(z, x)  # deconvolution brings fine detail back
    assert hf_ratio(z, x) < 1.5
