"""Every core entry point reads images by the one policy of ``restorelab.image``: an 8-bit image
means the same as its float image x/255."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from restorelab.edit import to_float
from restorelab.prior import decompose
from restorelab.prior import operators as O


def _u8(channels: int) -> np.ndarray:
    x = data.astronaut()[100:116, 200:220]
    return np.ascontiguousarray(x if channels == 3 else x[:, :, 1])


@pytest.mark.parametrize("channels", [1, 3])
def test_operators_read_uint8_on_the_unit_scale(channels):
    x8 = _u8(channels)
    xf = x8.astype(np.float32) / 255
    for op in (O.random_pixels(x8.shape[:2], 0.3, seed=1), O.super_resolution(x8.shape[:2], 2),
               O.deblur(x8.shape[:2], 0.2)):
        np.testing.assert_allclose(op.Mt(x8), op.Mt(xf), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(op.proj(x8), op.proj(xf), atol=1e-6)
        assert op.proj(x8).shape == x8.shape
    with pytest.raises(ValueError, match="NaN"):
        O.super_resolution((4, 4), 2).Mt(np.full((4, 4), np.nan))
    with pytest.raises(TypeError, match="dtype"):
        O.super_resolution((4, 4), 2).Mt(np.zeros((4, 4), np.int64))


def test_decompose_reads_uint8_on_the_unit_scale():
    x8 = _u8(3)
    a = decompose(x8, "gaussian", levels=2, sigma=25 / 255)
    b = decompose(x8.astype(np.float32) / 255, "gaussian", levels=2, sigma=25 / 255)
    assert a.base.dtype == np.float32 and a.base.max() <= 1.0
    np.testing.assert_allclose(a.base, b.base, atol=1e-6)
    for ra, rb in zip(a.residuals, b.residuals, strict=True):
        np.testing.assert_allclose(ra, rb, atol=1e-6)


def test_edit_to_float_keeps_gray_alpha_and_the_scales():
    ga = np.stack([_u8(1), np.full((16, 20), 255, np.uint8)], axis=2)  # gray + alpha
    f, dt = to_float(ga)
    assert dt == np.uint8 and f.shape == ga.shape and f.dtype == np.float32
    np.testing.assert_array_equal(f[:, :, 1], 1.0)
    np.testing.assert_allclose(f[:, :, 0], ga[:, :, 0] / 255, atol=1e-7)
    f16, _ = to_float(ga.astype(np.uint16) * 257)
    np.testing.assert_allclose(f16, f, atol=1e-6)
    with pytest.raises(TypeError, match="dtype"):
        to_float(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="NaN"):
        to_float(np.full((4, 4), np.inf, np.float32))
