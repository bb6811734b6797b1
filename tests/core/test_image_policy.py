import numpy as np
import pytest

from restorelab.image import as_float_image, from_float_image


def test_integer_scales_and_round_trip():
    u8 = np.array([[0, 128, 255]], np.uint8)
    assert np.allclose(as_float_image(u8), [[0, 128 / 255, 1]])
    u16 = np.array([[0, 65535]], np.uint16)
    assert np.allclose(as_float_image(u16), [[0, 1]])
    assert np.array_equal(from_float_image(as_float_image(u8), np.uint8), u8)
    assert np.array_equal(from_float_image(as_float_image(u16), np.uint16), u16)


def test_float_is_not_clipped_and_bool_is_zero_one():
    f = np.array([[-0.1, 1.2]], np.float64)
    out = as_float_image(f)
    assert out.dtype == np.float32 and np.allclose(out, f)
    assert np.array_equal(as_float_image(np.array([[True, False]])), [[1.0, 0.0]])


def test_shapes_and_alpha():
    assert as_float_image(np.zeros((4, 5, 1), np.uint8)).shape == (4, 5)
    rgba = np.zeros((4, 5, 4), np.uint8)
    assert as_float_image(rgba).shape == (4, 5, 4)
    assert as_float_image(rgba, alpha="drop").shape == (4, 5, 3)
    with pytest.raises(ValueError, match="alpha"):
        as_float_image(rgba, alpha="error")
    with pytest.raises(ValueError, match="shape"):
        as_float_image(np.zeros((4, 5, 2)))
    with pytest.raises(ValueError, match="empty"):
        as_float_image(np.zeros((0, 5)))


def test_refuses_nan_and_unknown_dtypes_without_touching_input():
    a = np.array([[0.5, np.nan]], np.float32)
    with pytest.raises(ValueError, match="NaN"):
        as_float_image(a)
    with pytest.raises(TypeError, match="int32"):
        as_float_image(np.zeros((2, 2), np.int32))
    f = np.ones((2, 2), np.float32)
    out = as_float_image(f, copy=True)
    out[0, 0] = 7
    assert f[0, 0] == 1
