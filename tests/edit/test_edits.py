"""The IPOL edits on synthetic images with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from restorelab import edit
from restorelab.edit import (
    OPERATIONS,
    color_change,
    contrast_enhance,
    illumination_change,
    seamless_tile,
    texture_flatten,
)
from restorelab.params import ParamError

from .test_solvers import TOL, dense_reference


def _bump(h: int, w: int, r: float) -> np.ndarray:
    """A smooth bump that is exactly zero outside radius r around the centre."""
    yy, xx = np.mgrid[:h, :w]
    d2 = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / (r * r)
    return np.where(d2 < 1, (1 - d2) ** 3, 0.0)


def _disc(h: int, w: int, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < r * r


@pytest.fixture(scope="module")
def smooth_rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    import scipy.ndimage as ndi

    x = ndi.gaussian_filter(rng.random((48, 56, 3)), (3, 3, 0))
    return ((x - x.min()) / (x.max() - x.min())).astype(np.float32)


def test_contrast_whole_image_is_affine(smooth_rgb: np.ndarray) -> None:
    out = contrast_enhance(smooth_rgb, None, factor=1.7)
    mean = smooth_rgb.mean(axis=(0, 1))
    assert np.abs(out - (mean + 1.7 * (smooth_rgb - mean))).max() < 1e-4


def test_contrast_inside_mask_scales_a_bump() -> None:
    bump = _bump(40, 40, 10)
    img = (0.4 + 0.3 * bump).astype(np.float32)
    mask = _disc(40, 40, 14)
    out = contrast_enhance(img, mask, factor=2.0)
    assert np.abs(out - (0.4 + 0.6 * bump)).max() < 1e-4
    assert np.array_equal(out[~mask], img[~mask])


def test_color_change_scales_each_channel() -> None:
    bump = _bump(40, 40, 10)
    img = np.stack([0.3 + 0.2 * bump, 0.5 + 0.1 * bump, 0.2 + 0.3 * bump], axis=2).astype(np.float32)
    mask = _disc(40, 40, 14)
    out = color_change(img, mask, red_mul=1.5, green_mul=0.5, blue_mul=0.0)
    expect = np.stack([0.3 + 0.3 * bump, 0.5 + 0.05 * bump, 0.2 + 0 * bump], axis=2)
    assert np.abs(out - expect).max() < 1e-4
    with pytest.raises(ValueError, match="colour"):
        color_change(img[:, :, 0], mask)


def test_illumination_beta_zero_is_identity(smooth_rgb: np.ndarray) -> None:
    mask = _disc(*smooth_rgb.shape[:2], 15)
    assert np.abs(illumination_change(smooth_rgb, mask, alpha=0.2, beta=0.0) - smooth_rgb).max() < 1e-4
    assert np.abs(illumination_change(smooth_rgb, None, alpha=0.2, beta=0.0) - smooth_rgb).max() < 1e-4


def test_illumination_on_a_ramp_scales_it() -> None:
    h, w = 20, 30
    f = np.tile(np.linspace(0.1, 0.9, w, dtype=np.float32), (h, 1))
    alpha, beta = 0.3, 0.4
    out = illumination_change(f, None, alpha=alpha, beta=beta)
    # |∇f| = slope everywhere but the last column (0), so a = alpha·slope·(w−1)/w
    k = (alpha * (w - 1) / w) ** beta
    assert np.abs(out - (f.mean() + k * (f - f.mean()))).max() < 1e-5


def test_illumination_masked_matches_dense(smooth_rgb: np.ndarray) -> None:
    f = smooth_rgb.astype(np.float64)
    mask = _disc(*f.shape[:2], 16)
    out = illumination_change(smooth_rgb, mask, alpha=0.2, beta=0.3)
    gx = np.zeros_like(f)
    gy = np.zeros_like(f)
    gx[:, :-1] = f[:, 1:] - f[:, :-1]
    gy[:-1] = f[1:] - f[:-1]
    n = np.hypot(gx, gy)
    a = 0.2 * n[mask].mean(axis=0)
    s = np.where(n > 1e-12, a**0.3 * np.maximum(n, 1e-12) ** -0.3, 0)
    ref = dense_reference(f, mask, (gx * s)[:, :-1], (gy * s)[:-1])
    assert np.abs(out - ref)[mask].max() <= TOL


def test_flatten_removes_texture_keeps_step() -> None:
    h, w = 48, 64
    yy, xx = np.mgrid[:h, :w]
    step = np.where(xx < w // 2, 0.25, 0.75)
    texture = 0.015 * np.sin(1.3 * xx) * np.cos(1.1 * yy)
    img = (step + texture).astype(np.float32)
    out = texture_flatten(img, None, low_threshold=30, high_threshold=60)
    far = np.abs(xx - w // 2) > 3
    assert np.abs(out - step)[far].max() < 0.02
    # the texture is gone (it was ±0.015): what is left is smooth within each side
    assert np.std(out[:, 3 : w // 2 - 4]) < 0.1 * np.std(texture)
    # the step survives
    assert out[:, w // 2 + 3 :].mean() - out[:, : w // 2 - 3].mean() > 0.45


def test_flatten_masked_leaves_outside_and_matches_dense() -> None:
    rng = np.random.default_rng(1)
    img = (0.5 + 0.05 * rng.standard_normal((30, 34))).astype(np.float32)
    img[:, 20:] += 0.3
    mask = _disc(30, 34, 10)
    out = texture_flatten(img, mask)
    assert np.array_equal(out[~mask], img[~mask])
    import cv2

    e = cv2.Canny(np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8), 30, 45, apertureSize=3) > 0
    f = img.astype(np.float64)[:, :, None]
    vx = (f[:, 1:] - f[:, :-1]) * (e[:, 1:] | e[:, :-1])[:, :, None]
    vy = (f[1:] - f[:-1]) * (e[1:] | e[:-1])[:, :, None]
    ref = dense_reference(f, mask, vx, vy)[:, :, 0]
    assert np.abs(out - ref)[mask].max() <= TOL


def test_tile_ramp_known_answer() -> None:
    h, w = 6, 10
    f = np.tile(np.arange(w, dtype=np.float32) / (w - 1), (h, 1))
    out = seamless_tile(f)
    d = np.diff(out, axis=1)
    # least squares on the loop: every edge loses the mean guidance 1/w
    assert np.allclose(d, 1 / (w - 1) - 1 / w, atol=1e-5)
    assert np.allclose(out[:, 0] - out[:, -1], -1 / w, atol=1e-5)
    assert np.allclose(np.diff(out, axis=0), 0, atol=1e-6)
    assert abs(out.mean() - f.mean()) < 1e-6


def test_tile_has_no_seam(smooth_rgb: np.ndarray) -> None:
    img = smooth_rgb.copy()
    img[:, :, 0] += np.linspace(0, 0.5, img.shape[1])[None, :]  # a strong left/right jump
    out = seamless_tile(img)
    seam_x = np.abs(out[:, 0] - out[:, -1]).max()
    seam_y = np.abs(out[0] - out[-1]).max()
    inner = max(np.abs(np.diff(out, axis=1)).max(), np.abs(np.diff(out, axis=0)).max())
    assert seam_x <= inner and seam_y <= inner
    assert seam_x < 0.2 * np.abs(img[:, 0] - img[:, -1]).max()


def test_rgba_alpha_carried_and_dtypes(smooth_rgb: np.ndarray) -> None:
    alpha = np.linspace(0, 1, smooth_rgb.shape[1], dtype=np.float32)[None, :].repeat(smooth_rgb.shape[0], 0)
    rgba = np.concatenate([smooth_rgb, alpha[:, :, None]], axis=2)
    for fn in (contrast_enhance, texture_flatten, illumination_change, seamless_tile):
        out = fn(rgba)
        assert out.shape == rgba.shape and out.dtype == np.float32
        assert np.array_equal(out[:, :, 3], alpha)
    u16 = np.rint(smooth_rgb * 65535).astype(np.uint16)
    a = contrast_enhance(u16, None, factor=1.2)
    b = contrast_enhance(u16.astype(np.float32) / 65535, None, factor=1.2)
    assert np.abs(a - b).max() < 1e-6


def test_operations_declarations_and_apply(smooth_rgb: np.ndarray) -> None:
    assert set(OPERATIONS) == {"clone", "flatten", "illumination", "color", "contrast", "tile"}
    for name, params in OPERATIONS.items():
        names = [p.name for p in params]
        assert len(names) == len(set(names))
        if name == "clone":
            continue
        out = edit.apply(name, smooth_rgb)
        assert out.shape == smooth_rgb.shape
    with pytest.raises(ParamError):
        edit.apply("contrast", smooth_rgb, factor="lots")
    with pytest.raises(ParamError):
        edit.apply("contrast", smooth_rgb, nonsense=1)
    with pytest.raises(ValueError, match="no mask"):
        edit.apply("tile", smooth_rgb, np.ones(smooth_rgb.shape[:2], bool))
    with pytest.raises(ValueError):
        texture_flatten(smooth_rgb, kernel_size=4)


def test_edit_job_protocol(smooth_rgb: np.ndarray) -> None:
    from restorelab.jobs import run_job

    events = []
    out = run_job(edit.job("contrast", smooth_rgb, factor=2.0), on_progress=events.append)
    assert len(events) == 2 and events[-1].fraction == 1.0
    assert np.abs(out - contrast_enhance(smooth_rgb, None, 2.0)).max() == 0
