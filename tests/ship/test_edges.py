"""Inputs at the edges, each with a defined behaviour (issue 7, hardening).

| input                         | defined behaviour                                              |
|-------------------------------|----------------------------------------------------------------|
| 1×1 image                     | loads, saves, denoises to a 1×1 image                          |
| 20000×20000 header            | ImageError from the pixel limit, before any allocation         |
| 16-bit / float TIFF           | exact x/65535, float values kept unclipped                     |
| RGBA                          | loads as 4 channels; denoising keeps alpha unchanged           |
| NaN / inf pixels              | ValueError from denoisers, ImageError from load/save           |
| empty mask                    | ValueError from cloning and inpainting; saved in sessions      |
| whole-image mask              | clone = source up to a constant; inpainting = pure sampling    |
| σ = 0                         | a copy of the input                                            |
| σ at the top of its range (1) | finite output inside the input's range; above it: ValueError   |
"""

from __future__ import annotations

import resource
import struct
import time
import zlib

import numpy as np
import pytest

from restorelab import denoise, edit, io
from restorelab.prior import operators as ops

#: small search windows keep these loops fast; the defaults are tested by each family's own tests
_FAST = {"nlm": {"search": 7}}


def _get(name: str) -> denoise.Denoiser:
    return denoise.get(name, device="cpu", **_FAST.get(name, {}))


#: every registered denoiser; a learned one whose weights are missing fails, it is not dropped
DENOISERS = denoise.names()


def _png(width: int, height: int, depth: int = 8, ctype: int = 0, idat: bytes = b"") -> bytes:
    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat or zlib.compress(b"\0" * 64)) \
        + chunk(b"IEND", b"")


# ----------------------------------------------------------------------------- sizes
@pytest.mark.parametrize("shape", [(1, 1), (1, 1, 3), (1, 1, 4)])
def test_one_pixel_image(tmp_path, shape):
    x = np.full(shape, 0.5, np.float32)
    p = io.save_image(tmp_path / "one.png", x)
    y = io.load_image(p)
    assert y.shape == shape and abs(float(y.ravel()[0]) - 128 / 255) < 1e-6
    for n in DENOISERS:
        out = _get(n)(y, 0.1)
        assert out.shape == shape and np.isfinite(out).all(), n


def test_huge_header_is_rejected_by_the_pixel_limit_without_allocating(tmp_path):
    p = tmp_path / "huge.png"
    p.write_bytes(_png(20000, 20000, 8, 6))  # 1.6 GB of RGBA if it were decoded
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(io.ImageError, match="limit"):
        io.load_image(p)
    assert time.perf_counter() - t0 < 2.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 200_000  # kB: nothing decoded
    # the same from a TIFF whose size tags were edited
    import tifffile

    q = tmp_path / "huge.tif"
    tifffile.imwrite(q, np.zeros((4, 4), np.uint8))
    data = bytearray(q.read_bytes())
    (ifd,) = struct.unpack("<I", data[4:8])
    (n,) = struct.unpack("<H", data[ifd : ifd + 2])
    for k in range(n):
        e = ifd + 2 + 12 * k
        tag, typ = struct.unpack("<HH", data[e : e + 4])
        if tag in (256, 257):
            data[e + 8 : e + 12] = struct.pack("<I", 20000) if typ == 4 else struct.pack("<HH", 20000, 0)
    q.write_bytes(bytes(data))
    with pytest.raises(io.ImageError):
        io.load_image(q)


# ----------------------------------------------------------------------------- depths and channels
def test_16_bit_and_float_tiff(tmp_path):
    import tifffile

    a16 = np.array([[0, 1, 32768, 65535]], np.uint16)
    tifffile.imwrite(tmp_path / "a16.tif", a16)
    got = io.load_image(tmp_path / "a16.tif")
    assert got.dtype == np.float32 and np.allclose(got, a16 / 65535.0, atol=1e-7)
    af = np.array([[1.5, -0.2], [0.25, 0.75]], np.float32)
    tifffile.imwrite(tmp_path / "af.tif", af)
    assert np.array_equal(io.load_image(tmp_path / "af.tif"), af)  # float values kept unclipped
    rgb16 = np.random.default_rng(0).integers(0, 65536, (5, 6, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb16, photometric="rgb")
    assert np.allclose(io.load_image(tmp_path / "rgb16.tif"), rgb16 / 65535.0, atol=1e-7)


def test_rgba_keeps_alpha(tmp_path, astronaut_small):
    rng = np.random.default_rng(1)
    alpha = rng.random(astronaut_small.shape[:2]).astype(np.float32)
    x = np.concatenate([astronaut_small, alpha[..., None]], axis=2)[:16, :16]
    p = io.save_image(tmp_path / "rgba.png", x, bit_depth=16)
    y = io.load_image(p)
    assert y.shape == (16, 16, 4)
    for n in DENOISERS:
        out = _get(n)(y, 0.05)
        assert out.shape == y.shape and np.array_equal(out[..., 3], y[..., 3]), n


# ----------------------------------------------------------------------------- bad values
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels(tmp_path, bad):
    x = np.full((8, 8), 0.5, np.float32)
    x[3, 4] = bad
    for n in DENOISERS:
        with pytest.raises(ValueError, match="NaN|infinite"):
            _get(n)(x, 0.1)
    with pytest.raises(io.ImageError, match="NaN|infinite"):
        io.save_image(tmp_path / "bad.png", x)
    import tifffile

    tifffile.imwrite(tmp_path / "bad.tif", x)
    with pytest.raises(io.ImageError, match="NaN|infinite"):
        io.load_image(tmp_path / "bad.tif")
    assert not (tmp_path / "bad.png").exists()


# ----------------------------------------------------------------------------- masks
def test_empty_mask(tmp_path, camera_small):
    empty = np.zeros(camera_small.shape, bool)
    with pytest.raises(ValueError, match="empty"):
        edit.seamless_clone(camera_small, camera_small, empty, (0, 0))
    with pytest.raises(ValueError, match="empty"):
        ops.inpaint(empty)
    from restorelab.session import MaskLayer, Session, load_session, save_session

    p = save_session(tmp_path / "e.rlsession", Session(masks=[MaskLayer("m", empty)]))
    assert not load_session(p).masks[0].mask.any()  # an empty painted mask is a valid state


def test_whole_image_clone_mask_keeps_source_gradients(camera_small):
    src = camera_small[:40, :40]
    dst = camera_small[40:80, 40:80]
    out = edit.seamless_clone(src, dst, np.ones(src.shape, bool), (0, 0), mode="import")
    assert np.isfinite(out).all() and out.shape == dst.shape
    assert np.ptp(out - src) < 1e-4  # nothing of dst is left to match: the source up to a constant


def test_whole_image_inpainting_mask_is_pure_sampling():
    from restorelab.jobs import run_job
    from restorelab.prior.sampler import inverse_job, sample_job

    den = _get("gaussian")
    op = ops.inpaint(np.ones((16, 16), bool))
    assert op.m == 0  # nothing is measured
    kw = dict(max_iter=5, device="cpu", beta=0.5, h0=0.01)
    inv = run_job(inverse_job(den, op, np.zeros((16, 16), np.float32), seed=3, **kw))
    alg1 = run_job(sample_job(den, shape=(16, 16), seed=3, **kw))
    # Algorithm 2 with no measurement is Algorithm 1: the same seed gives the same sample
    np.testing.assert_array_equal(inv.samples[0], alg1.samples[0])
    # the image's values are not used at all, and another seed draws another sample
    other = run_job(inverse_job(den, op, np.full((16, 16), 0.7, np.float32), seed=3, **kw))
    np.testing.assert_array_equal(other.samples[0], inv.samples[0])
    reseeded = run_job(inverse_job(den, op, np.zeros((16, 16), np.float32), seed=4, **kw))
    assert np.abs(reseeded.samples[0] - inv.samples[0]).max() > 0.05


# ----------------------------------------------------------------------------- noise levels
def test_sigma_zero_returns_a_copy(camera_small):
    y = camera_small[:16, :16]
    for n in DENOISERS:
        out = _get(n)(y, 0.0)
        assert np.array_equal(out, y) and out is not y, n


def test_sigma_far_above_the_range(camera_small):
    from restorelab.params import SIGMA_MAX

    y = camera_small[:16, :16]
    for n in DENOISERS:
        out = _get(n)(y, SIGMA_MAX)  # the top of the declared range: finite, inside the input's range
        assert out.shape == y.shape and np.isfinite(out).all(), n
        assert y.min() - 1e-3 <= out.min() and out.max() <= y.max() + 1e-3, n
        for sigma in (2.0, 50.0, 1e9):  # above it: refused, naming the range
            with pytest.raises(ValueError, match=r"out of range \[0, 1\]"):
                _get(n)(y, sigma)
    for bad in (-0.1, np.nan, np.inf):
        with pytest.raises(ValueError):
            _get(DENOISERS[0])(y, bad)
