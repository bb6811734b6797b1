"""Painted-mask inpainting: regions from the mask, classical fills, colour, modes, cancel."""

from __future__ import annotations

import numpy as np
import pytest

from restorelab.jobs import Cancelled, CancelToken, run_job
from restorelab.prior import fills
from restorelab.prior.inpaint import inpaint, inpaint_job, plan_regions


def _ramp(h: int = 72, w: int = 72) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([0.2 + 0.6 * xx / (w - 1), 0.7 - 0.4 * yy / (h - 1), 0.3 + 0.2 * (xx + yy) / (h + w)], 2)


def test_regions_cover_the_mask_once_and_tile_long_scratches() -> None:
    m = np.zeros((300, 900), bool)
    m[100:105, 20:880] = True  # a scratch across the image
    m[200:230, 400:450] = True  # a blob
    m[5:8, 5:8] = True  # a speck in the corner
    for i in range(250):  # a diagonal scratch: its tiles hold the mask in one corner only
        m[40 + i // 2 : 44 + i // 2, 500 + i] = True
    regions = plan_regions(m, margin=24, window=192)
    count = np.zeros(m.shape, int)
    for r in regions:
        a, b, c, d = r.box
        assert c - a <= 192 and d - b <= 192
        count[a:c, b:d] += r.hole
        # every hole pixel has the margin of context inside its window (or the image border)
        ys, xs = np.nonzero(r.hole)
        assert (ys.min() + a - a >= min(24, ys.min() + a)) and (c - (ys.max() + a + 1) >= min(24, 300 - c))
        assert xs.min() >= min(24, b + xs.min()) and (d - b) - xs.max() - 1 >= min(24, 900 - d)
    np.testing.assert_array_equal(count, m.astype(int))
    assert len(regions) >= 6  # the scratch is tiled along its length


@pytest.mark.parametrize("name", list(fills.FILLS))
def test_fills_keep_known_pixels_and_fill_a_ramp(name: str) -> None:
    x = _ramp()
    m = np.zeros(x.shape[:2], bool)
    m[30:38, 20:50] = True
    out = fills.fill(name, x, m)
    np.testing.assert_array_equal(out[~m], x[~m])
    tol = {"biharmonic": 1 / 255, "blend": 1 / 255, "telea": 8 / 255, "ns": 8 / 255, "patch": 12 / 255}[name]
    assert np.abs(out[m] - x[m]).max() < tol
    assert np.abs(out[m] - x[m]).max() > 0 or name == "biharmonic"


def test_patch_fill_copies_texture() -> None:
    """On a periodic texture the exemplar fill restores the pattern where diffusion blurs it."""
    yy, xx = np.mgrid[0:64, 0:64]
    x = (((xx // 4) + (yy // 4)) % 2).astype(np.float32)
    m = np.zeros(x.shape, bool)
    m[26:36, 26:36] = True
    err_patch = np.abs(fills.patch_fill(x, m, patch=9) - x)[m].mean()
    err_diff = np.abs(fills.biharmonic(x, m) - x)[m].mean()
    assert err_patch < 0.05 and err_diff > 0.2


def test_fill_params_are_checked() -> None:
    from restorelab.params import ParamError

    with pytest.raises(ParamError, match="3"):
        fills.fill("patch", _ramp(), np.ones((72, 72), bool), patch=1)


@pytest.mark.parametrize("kind,tol", [("constant", 2 / 255), ("ramp", 4 / 255)])
def test_colour_is_right_in_a_hole(kind: str, tol: float) -> None:
    """A hole in a constant colour comes back that colour, in a smooth ramp the ramp; every
    pixel of the result is in [0, 1] (a channel pushed out of range shows as a false hue)."""
    x = np.empty((64, 64, 3), np.float32)
    x[:] = (0.85, 0.25, 0.55)
    if kind == "ramp":
        x = _ramp(64, 64)
    m = np.zeros((64, 64), bool)
    m[24:40, 20:44] = True
    res = inpaint(x, m, "bfcnn", device="cpu", mode="fast")
    assert res.image.shape == x.shape
    np.testing.assert_array_equal(res.image[~m], x[~m])
    err = np.abs(res.image - x)[m].max()
    assert err <= tol, f"max colour error {err * 255:.2f}/255"


def test_fast_mode_progress_and_known_pixels(astronaut_small: np.ndarray) -> None:
    m = np.zeros(astronaut_small.shape[:2], bool)
    m[40:46, 5:90] = True
    events: list = []
    res = run_job(inpaint_job(astronaut_small, m, "bfcnn", device="cpu", iters=4), on_progress=events.append)
    np.testing.assert_array_equal(res.image[~m], astronaut_small[~m])
    assert 0 <= res.image.min() and res.image.max() <= 1
    totals = {e.total for e in events if e.total}
    assert len(totals) == 1 and events[-1].step == events[-1].total
    assert all(e.data.get("regions") for e in events[1:])
    # the refinement did change the classical start
    start = fills.fill("biharmonic", astronaut_small, m)
    assert np.abs(res.image - start)[m].max() > 1e-3


def test_sample_mode_mean_and_uncertainty(astronaut_small: np.ndarray) -> None:
    x = astronaut_small[:48, :48]
    m = np.zeros(x.shape[:2], bool)
    m[20:28, 20:28] = True
    res = inpaint(x, m, "bfcnn", device="cpu", mode="sample", samples=2, max_iter=30)
    assert len(res.samples) == 2 and res.std is not None
    np.testing.assert_allclose(res.image[m], np.mean([s[m] for s in res.samples], 0), atol=1e-5)
    assert res.std[m].mean() > 1e-3 and np.all(res.std[~m] == 0)


def test_cancel_stops_between_iterations(astronaut_small: np.ndarray) -> None:
    m = np.zeros(astronaut_small.shape[:2], bool)
    m[30:50, 30:50] = True
    token = CancelToken()
    seen: list = []

    def on(ev) -> None:  # noqa: ANN001
        seen.append(ev)
        if ev.step >= 2:
            token.cancel()

    with pytest.raises(Cancelled):
        job = inpaint_job(astronaut_small, m, "bfcnn", device="cpu", iters=50, sigma0=0.2)
        run_job(job, cancel=token, on_progress=on)
    assert max(e.step for e in seen) == 2


def test_fill_mode_and_gray_images(camera_small: np.ndarray) -> None:
    m = np.zeros(camera_small.shape, bool)
    m[50:60, 10:100] = True
    res = inpaint(camera_small, m, mode="fill", fill="telea")
    np.testing.assert_array_equal(res.image, fills.telea(camera_small, m))
    with pytest.raises(ValueError, match="empty"):
        inpaint(camera_small, np.zeros_like(m), mode="fill")
