"""Seamless cloning: placement, clipping, sessions, dtypes, alpha, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from restorelab.edit import from_float, prepare, seamless_clone, to_float

from .test_solvers import TOL, dense_reference


def _ramp(h: int, w: int, a: float, b: float, c: float, channels: int = 3) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    base = c + a * yy + b * xx
    return np.stack([base + 0.05 * k for k in range(channels)], axis=2).astype(np.float32)


def _disc(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


@pytest.mark.parametrize("solver", ["auto", "capacitance", "direct", "cg"])
@pytest.mark.parametrize("offset", [(0, 0), (7, -5), (-20, 30)])
def test_ramp_into_ramp_reproduces_destination(solver: str, offset: tuple[int, int]) -> None:
    # the same slopes, different levels: the guidance is the destination's own gradient
    src = _ramp(60, 70, 0.004, -0.003, 0.2)
    dst = _ramp(64, 80, 0.004, -0.003, 0.45)
    mask = _disc(60, 70, 30, 35, 18)
    out = seamless_clone(src, dst, mask, offset, solver=solver)
    assert np.abs(out - dst).max() < 1e-4


def test_offset_placement_and_clipping_against_dense() -> None:
    rng = np.random.default_rng(5)
    src = rng.random((20, 24, 3)).astype(np.float32)
    dst = rng.random((18, 21, 3)).astype(np.float32)
    mask = np.zeros((20, 24), bool)
    mask[3:16, 4:20] = True
    mask[8:10, 9:12] = False
    offset = (7, -6)  # the lower part and the left part fall outside the destination
    sess = prepare(src, mask)
    placed = sess.mask_at(offset, dst.shape)
    expect = np.zeros((18, 21), bool)
    ys, xs = np.nonzero(mask)
    ys, xs = ys + offset[0], xs + offset[1]
    ok = (ys >= 0) & (ys < 18) & (xs >= 0) & (xs < 21)
    expect[ys[ok], xs[ok]] = True
    assert np.array_equal(placed, expect)
    # independent reference: the source resampled into the destination frame (edge clamped)
    yy = np.clip(np.arange(18) - offset[0], 0, 19)
    xx = np.clip(np.arange(21) - offset[1], 0, 23)
    g = src[yy[:, None], xx[None, :]].astype(np.float64)
    ref = dense_reference(dst.astype(np.float64), placed, g[:, 1:] - g[:, :-1], g[1:] - g[:-1])
    for solver in ("auto", "direct", "cg"):
        out = seamless_clone(src, dst, mask, offset, solver=solver)
        assert np.abs(out - ref)[placed].max() <= TOL
        assert np.array_equal(out[~placed], dst[~placed])


def test_session_place_equals_seamless_clone() -> None:
    rng = np.random.default_rng(6)
    src = rng.random((50, 60, 3)).astype(np.float32)
    dst = rng.random((90, 100, 3)).astype(np.float32)
    mask = _disc(50, 60, 25, 30, 20)
    mask[20:24, 28:33] = False
    for mode in ("import", "mixed", "average"):
        sess = prepare(src, mask, mode=mode)
        for off in [(10, 10), (12, 14), (10, 10), (-15, 5), (60, 70), (20, -25)]:
            a = sess.place(dst, off)
            b = seamless_clone(src, dst, mask, off, mode=mode, solver="direct")
            assert np.abs(a - b).max() <= TOL, (mode, off)
            assert np.array_equal(a[~sess.mask_at(off, dst.shape)], dst[~sess.mask_at(off, dst.shape)])


def test_placement_entirely_outside_raises() -> None:
    src = np.zeros((10, 10), np.float32)
    mask = np.ones((10, 10), bool)
    with pytest.raises(ValueError, match="outside"):
        seamless_clone(src, np.zeros((20, 20), np.float32), mask, (25, 0))


def test_mask_covering_whole_destination_keeps_mean() -> None:
    rng = np.random.default_rng(7)
    src = rng.random((16, 16)).astype(np.float32)
    dst = rng.random((16, 16)).astype(np.float32)
    out = seamless_clone(src, dst, np.ones((16, 16), bool))
    assert abs(out.mean() - dst.mean()) < 1e-5
    assert np.abs((out - out.mean()) - (src - src.mean())).max() < 1e-4


def test_one_pixel_mask_formula() -> None:
    rng = np.random.default_rng(8)
    src = rng.random((5, 5)).astype(np.float64)
    dst = rng.random((5, 5)).astype(np.float64)
    m = np.zeros((5, 5), bool)
    m[2, 2] = True
    out = seamless_clone(src, dst, m)
    nb = [(1, 2), (3, 2), (2, 1), (2, 3)]
    expect = sum(dst[p] + src[2, 2] - src[p] for p in nb) / 4
    assert abs(out[2, 2] - expect) < 1e-6


def test_uint16_solve_is_257_times_uint8() -> None:
    rng = np.random.default_rng(9)
    s8 = (rng.random((40, 50, 3)) * 255).astype(np.uint8)
    d8 = (rng.random((40, 50, 3)) * 255).astype(np.uint8)
    mask = _disc(40, 50, 20, 25, 15)
    o8 = seamless_clone(s8, d8, mask, (0, 0))
    o16 = seamless_clone(s8.astype(np.uint16) * 257, d8.astype(np.uint16) * 257, mask, (0, 0))
    assert np.abs(o8 - o16).max() < 1e-6
    q8 = from_float(o8, np.uint8).astype(np.int64)
    q16 = from_float(o16, np.uint16).astype(np.int64)
    assert np.abs(q16 - 257 * q8).max() <= 129  # the 8-bit rounding step, no more
    assert np.array_equal(q16[~mask], d8[~mask].astype(np.int64) * 257)


def test_rounding_not_truncation() -> None:
    x = np.array([[0.2 / 255, 0.6 / 255, 254.5001 / 255, 1.3, -0.2]], np.float32)
    assert from_float(x, np.uint8).tolist() == [[0, 1, 255, 255, 0]]
    f, dt = to_float(np.array([[0, 255]], np.uint8))
    assert dt == np.uint8 and f.dtype == np.float32 and f.tolist() == [[0.0, 1.0]]


def test_inputs_are_not_modified() -> None:
    rng = np.random.default_rng(10)
    src = (rng.random((30, 30, 3)) * 255).astype(np.uint8)
    dst = rng.random((40, 40, 3)).astype(np.float32)
    mask = (_disc(30, 30, 15, 15, 10) * 255).astype(np.uint8)
    copies = [a.copy() for a in (src, dst, mask)]
    seamless_clone(src, dst, mask, (3, 4), mode="mixed")
    sess = prepare(src, mask)
    sess.place(dst, (5, 5))
    sess.mask_at((5, 5), dst.shape)
    for a, b in zip((src, dst, mask), copies, strict=True):
        assert np.array_equal(a, b)


def test_rgba_alpha_copied_and_gray_source() -> None:
    rng = np.random.default_rng(11)
    dst = rng.random((30, 30, 4)).astype(np.float32)
    src = rng.random((30, 30)).astype(np.float32)  # gray into colour
    mask = _disc(30, 30, 15, 15, 8)
    out = seamless_clone(src, dst, mask)
    assert out.shape == (30, 30, 4)
    assert np.array_equal(out[:, :, 3], dst[:, :, 3])
    with pytest.raises(ValueError, match="colour channels"):
        seamless_clone(rng.random((30, 30, 3)), rng.random((30, 30)), mask)


def test_values_outside_unit_range_are_not_clipped() -> None:
    src = _ramp(20, 20, 0.1, 0.1, -0.5, channels=1)[:, :, 0]
    dst = np.full((20, 20), 1.5, np.float32)
    out = seamless_clone(src, dst, _disc(20, 20, 10, 10, 6))
    assert out.max() > 1.5 and out.min() < 1.5  # the source's slopes survive, unclipped


@pytest.mark.parametrize(
    "kwargs, err",
    [
        ({"mask": np.zeros((10, 10), bool)}, "empty"),
        ({"mask": np.ones((9, 10), bool)}, "shape"),
        ({"mode": "sideways"}, "mode"),
        ({"solver": "magic"}, "solver"),
        ({"offset": (1.5, 0)}, "offset"),
        ({"src": np.full((10, 10), np.nan)}, "NaN"),
    ],
)
def test_bad_input_raises_clearly(kwargs: dict, err: str) -> None:
    args = {"src": np.zeros((10, 10)), "dst": np.zeros((12, 12)), "mask": np.ones((10, 10), bool),
            "offset": (0, 0), "mode": "import", "solver": "auto"}
    args.update(kwargs)
    with pytest.raises(ValueError, match=err):
        seamless_clone(**args)


def test_bad_dtype_raises_type_error() -> None:
    with pytest.raises(TypeError):
        seamless_clone(np.zeros((4, 4), np.int32), np.zeros((4, 4)), np.ones((4, 4), bool))


def test_paste_copies_source_pixels() -> None:
    rng = np.random.default_rng(12)
    src = rng.random((10, 10, 3)).astype(np.float32)
    dst = rng.random((12, 12, 3)).astype(np.float32)
    m = _disc(10, 10, 5, 5, 3)
    out = seamless_clone(src, dst, m, (1, 2), mode="paste")
    assert np.array_equal(out[1:11, 2:12][m], src[m])
    placed = prepare(src, m).mask_at((1, 2), dst.shape)
    assert np.array_equal(out[~placed], dst[~placed])


def test_session_checks_each_new_destination_and_the_crop_it_reads() -> None:
    rng = np.random.default_rng(13)
    src = rng.random((20, 20, 3)).astype(np.float32)
    dst = rng.random((40, 40, 3)).astype(np.float32)
    mask = _disc(20, 20, 10, 10, 6)
    sess = prepare(src, mask)
    first = sess.place(dst, (5, 5))
    bad = dst.copy()
    bad[39, 39, 0] = np.nan  # far from the clone: a new buffer is scanned whole
    with pytest.raises(ValueError, match="NaN"):
        sess.place(bad, (5, 5))
    again = dst.copy()
    sess.place(again, (5, 5))
    again[15, 15, 1] = np.inf  # inside the crop of the next placement: always checked
    with pytest.raises(ValueError, match="NaN"):
        sess.place(again, (5, 5))
    assert np.array_equal(sess.place(dst, (5, 5)), first)  # the same buffer: the same answer


@pytest.mark.parametrize("channels", [0, 3, 4])
def test_place_into_out_rewrites_only_the_boxes_and_equals_a_new_image(channels: int) -> None:
    rng = np.random.default_rng(14)
    shape = (30, 36) if channels == 0 else (30, 36, channels)
    src = rng.random((16, 16) if channels == 0 else (16, 16, channels)).astype(np.float32)
    dst = rng.random(shape).astype(np.float32)
    dst2 = rng.random(shape).astype(np.float32)
    mask = _disc(16, 16, 8, 8, 5)
    sess = prepare(src, mask, mode="mixed" if channels == 4 else "import")
    out = np.full(shape, -7.0, np.float32)  # garbage: the first call must fill it
    for off, d in (((2, 3), dst), ((5, 9), dst), ((-4, 25), dst), ((20, 1), dst), ((3, 3), dst2)):
        got = sess.place(d, off, out=out)
        assert got is out
        assert np.array_equal(out, sess.place(d, off)), off
    a, b = np.zeros(shape, np.float32), np.zeros(shape, np.float32)  # two buffers alternating
    for k, off in enumerate(((1, 1), (2, 4), (6, 2), (9, 9), (4, 12))):
        buf = a if k % 2 else b
        assert np.array_equal(sess.place(dst, off, out=buf), sess.place(dst, off)), off
    with pytest.raises(ValueError, match="out"):
        sess.place(dst, (0, 0), out=np.zeros((30, 35), np.float32))
    with pytest.raises(ValueError, match="share memory"):
        sess.place(dst, (0, 0), out=dst)


def test_place_reuse_returns_the_last_image_only_for_the_same_dst_and_offset() -> None:
    rng = np.random.default_rng(15)
    src = rng.random((16, 16, 3)).astype(np.float32)
    dst = rng.random((30, 36, 3)).astype(np.float32)
    mask = _disc(16, 16, 8, 8, 5)
    sess = prepare(src, mask)
    preview = sess.place(dst, (4, 6))
    assert sess.place(dst, (4, 6), reuse=True) is preview  # the commit: no new solve
    fresh = sess.place(dst, (4, 6))
    assert fresh is not preview and np.array_equal(fresh, preview)
    other = sess.place(dst, (4, 7), reuse=True)  # another offset: placed
    assert np.array_equal(other, prepare(src, mask).place(dst, (4, 7)))
    twin = dst.copy()  # equal values, another buffer: placed, not reused
    assert sess.place(twin, (4, 7), reuse=True) is not other
    a = sess.place(dst, (2, 2))
    sess.place(dst, (5, 5), out=np.zeros_like(dst))  # placements into out are not remembered...
    assert sess.place(dst, (2, 2), reuse=True) is a  # ...and do not replace the last image
    with pytest.raises(ValueError, match="reuse"):
        sess.place(dst, (2, 2), out=np.zeros_like(dst), reuse=True)
