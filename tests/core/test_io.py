"""restorelab.io: round trips, EXIF orientation, bad files, pixel limit, atomic writes."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from restorelab.io import ImageError, image_info, load_image, save_image


def _rand(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def _listing(d: Path) -> list[str]:
    return sorted(os.listdir(d))


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(9, 13), (9, 13, 3), (9, 13, 4)], ids=["gray", "rgb", "rgba"])
@pytest.mark.parametrize(
    "ext,bits,tol",
    [(".png", None, 0.5 / 255), (".png", 16, 0.5 / 65535), (".tif", None, 0.5 / 255),
     (".tif", 16, 0.5 / 65535), (".tif", 32, 0.0), (".npy", None, 0.0)],
)
def test_round_trip(tmp_path, shape, ext, bits, tol):
    x = _rand(shape)
    p = save_image(tmp_path / f"a{ext}", x, bit_depth=bits)
    y = load_image(p)
    assert y.dtype == np.float32 and y.shape == x.shape
    # rounding to the nearest level, not truncation: error ≤ half a level
    assert np.abs(y - x).max() <= tol + 1e-7
    info = image_info(p)
    assert (info.height, info.width) == shape[:2]
    assert info.channels == (shape[2] if len(shape) == 3 else 1)
    assert info.bit_depth == {None: 32 if ext == ".npy" else 8, 16: 16, 32: 32}[bits]


def test_16bit_keeps_precision_8bit_does_not(tmp_path):
    x = ((19660 + np.arange(41, dtype=np.float32)) / 65535)[None, :].repeat(3, 0)
    y16 = load_image(save_image(tmp_path / "a.png", x, bit_depth=16))
    y8 = load_image(save_image(tmp_path / "b.png", x))
    assert len(np.unique(y16)) == 41
    assert len(np.unique(y8)) <= 2


def test_float_formats_are_unclipped(tmp_path):
    x = _rand((8, 8, 3)) * 1.6 - 0.3
    for name, bits in (("f.tif", 32), ("f.npy", None)):
        y = load_image(save_image(tmp_path / name, x, bit_depth=bits))
        np.testing.assert_array_equal(y, x)


def test_integer_formats_clip_and_round(tmp_path):
    x = np.array([[-0.5, 0.0, 1.4 / 255, 1.6 / 255, 1.0, 3.0]], dtype=np.float32)
    raw = np.asarray(Image.open(save_image(tmp_path / "c.png", x)))
    np.testing.assert_array_equal(raw[0], [0, 0, 1, 2, 255, 255])


def test_jpeg_round_trip_close(tmp_path, camera_small):
    y = load_image(save_image(tmp_path / "c.jpg", camera_small))
    assert y.shape == camera_small.shape
    assert np.abs(y - camera_small).mean() < 0.01


def test_gray_alpha_png_loads_as_rgba(tmp_path):
    a = np.random.default_rng(1).integers(0, 256, (6, 7, 2), dtype=np.uint8)
    Image.fromarray(a, "LA").save(tmp_path / "la.png")
    y = load_image(tmp_path / "la.png")
    assert y.shape == (6, 7, 4)
    np.testing.assert_allclose(y[..., 3] * 255, a[..., 1], atol=1e-3)
    np.testing.assert_allclose(y[..., 1] * 255, a[..., 0], atol=1e-3)
    assert image_info(tmp_path / "la.png").channels == 4


def test_input_not_modified(tmp_path):
    x = _rand((5, 5, 3)) * 2 - 0.5
    x0 = x.copy()
    save_image(tmp_path / "a.png", x)
    np.testing.assert_array_equal(x, x0)


# --- EXIF orientation ---------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied(tmp_path, orientation):
    a = np.kron(np.arange(12, dtype=np.uint8).reshape(3, 4) * 20, np.ones((8, 8), np.uint8))
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    im.save(path, exif=exif.tobytes(), quality=100)
    with Image.open(path) as ref_im:
        ref = np.asarray(ImageOps.exif_transpose(ref_im))
    y = load_image(path)
    assert y.shape == ref.shape
    assert np.abs(y * 255 - ref).max() < 2
    if orientation == 6:  # rotated 90° clockwise: the first column becomes the first row reversed
        assert y.shape == (32, 24)
    info = image_info(path)
    assert (info.height, info.width) == ref.shape


# --- bad inputs ---------------------------------------------------------------------------


def _png_bytes(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def _bad_files(d: Path, camera: np.ndarray) -> dict[str, tuple[Path, str]]:
    out = {}
    (d / "zero.png").write_bytes(b"")
    out["zero"] = (d / "zero.png", "empty")
    (d / "text.png").write_text("this is not an image\n")
    out["text"] = (d / "text.png", "not an image")
    good = save_image(d / "good.png", camera).read_bytes()
    (d / "trunc.png").write_bytes(good[: len(good) // 2])
    out["truncated png"] = (d / "trunc.png", "truncated")
    goodj = save_image(d / "good.jpg", camera).read_bytes()
    (d / "trunc.jpg").write_bytes(goodj[: len(goodj) // 2])
    out["truncated jpeg"] = (d / "trunc.jpg", "truncated")
    (d / "huge.png").write_bytes(_png_bytes(100_000, 100_000))
    out["oversized header"] = (d / "huge.png", "limit")
    out["missing"] = (d / "missing.png", "no such file")
    (d / "folder.png").mkdir()
    out["folder"] = (d / "folder.png", "folder")
    np.save(d / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    out["pickle npy"] = (d / "obj.npy", "objects")
    np.save(d / "int.npy", np.zeros((4, 4), np.int32))
    out["int32 npy"] = (d / "int.npy", "unsupported")
    import tifffile

    tifffile.imwrite(d / "u32.tif", np.zeros((4, 4), np.uint32))
    out["uint32 tiff"] = (d / "u32.tif", "unsupported")
    return out


def test_bad_files_raise_image_error(tmp_path, camera_small):
    for what, (path, reason) in _bad_files(tmp_path, camera_small).items():
        with pytest.raises(ImageError) as ei:
            load_image(path)
        msg = str(ei.value)
        assert str(path) in msg, what
        assert reason in msg, (what, msg)
        if what != "folder":
            with pytest.raises(ImageError):
                image_info(path)


def test_oversized_header_fails_fast(tmp_path):
    import time

    p = tmp_path / "huge.png"
    p.write_bytes(_png_bytes(100_000, 100_000))
    t0 = time.perf_counter()
    with pytest.raises(ImageError, match="100000x100000"):
        load_image(p)
    assert time.perf_counter() - t0 < 0.5


def test_pixel_limit_argument_and_env(tmp_path, camera_small, monkeypatch):
    p = save_image(tmp_path / "c.tif", camera_small)
    assert load_image(p, max_pixels=128 * 128).shape == (128, 128)
    with pytest.raises(ImageError, match="limit"):
        load_image(p, max_pixels=128 * 128 - 1)
    monkeypatch.setenv("RESTORELAB_MAX_PIXELS", "1000")
    for name in ("c.tif",):
        with pytest.raises(ImageError, match="limit"):
            load_image(tmp_path / name)
    np.save(tmp_path / "c.npy", camera_small)
    with pytest.raises(ImageError, match="limit"):
        load_image(tmp_path / "c.npy")


def test_nan_is_rejected(tmp_path):
    x = _rand((6, 6))
    x[2, 3] = np.nan
    for name, bits in (("n.png", None), ("n.png", 16), ("n.tif", 16), ("n.tif", 32), ("n.npy", None)):
        with pytest.raises(ImageError, match="NaN"):
            save_image(tmp_path / name, x, bit_depth=bits)
    assert _listing(tmp_path) == []
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(ImageError, match="NaN"):
        load_image(tmp_path / "nan.npy")


@pytest.mark.parametrize(
    "name,image,bits,match",
    [("a.bmp", np.zeros((4, 4)), None, "extension"),
     ("a.jpg", np.zeros((4, 4)), 16, "8 bits"),
     ("a.jpg", np.zeros((4, 4, 4)), None, "alpha"),
     ("a.png", np.zeros((4, 4)), 32, "float32"),
     ("a.png", np.zeros((4, 4, 2)), None, "shape"),
     ("a.png", np.zeros((4, 4), np.int32), None, "dtype"),
     ("a.png", "not an array", None, "numpy"),
     ("missing/a.png", np.zeros((4, 4)), None, "does not exist")],
)
def test_bad_saves(tmp_path, name, image, bits, match):
    with pytest.raises(ImageError, match=match):
        save_image(tmp_path / name, image, bit_depth=bits)
    assert _listing(tmp_path) == []


# --- atomic, no overwrite -----------------------------------------------------------------


def test_overwrite_refused_then_allowed(tmp_path):
    p = save_image(tmp_path / "a.png", np.zeros((4, 4), np.float32))
    before = p.read_bytes()
    with pytest.raises(ImageError, match="exists; use overwrite"):
        save_image(p, np.ones((4, 4), np.float32))
    assert p.read_bytes() == before
    save_image(p, np.ones((4, 4), np.float32), overwrite=True)
    assert load_image(p).min() == 1.0
    assert _listing(tmp_path) == ["a.png"]


def test_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    x = _rand((5, 5))

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    monkeypatch.setattr(os, "link", boom)
    with pytest.raises(ImageError, match="(?i)no space left"):
        save_image(tmp_path / "a.png", x, overwrite=True)
    assert _listing(tmp_path) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ImageError, match="permission denied"):
            save_image(ro / "a.png", _rand((5, 5)))
        assert _listing(ro) == []
    finally:
        ro.chmod(0o755)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the umask from /proc")
def test_saved_file_is_readable_by_others(tmp_path, monkeypatch):
    with open("/proc/self/status", encoding="ascii") as f:
        umask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))

    def no_umask(*a):
        raise AssertionError("os.umask is process-wide; the writer must not flip it")

    monkeypatch.setattr(os, "umask", no_umask)
    p = save_image(tmp_path / "a.png", _rand((4, 4)))
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask  # the umask's mode, not a temp file's 0600


DEAD_PID = 4_194_304 + 17  # above Linux's largest pid: never a running process


def test_save_removes_a_killed_writers_temp_and_keeps_a_live_ones(tmp_path):
    stale = tmp_path / f".out.tif.{DEAD_PID}.0badcafe.tmp"
    stale.write_bytes(b"\0" * 4096)
    live = tmp_path / f".out.tif.{os.getppid()}.0badf00d.tmp"  # a save running in another process
    live.write_bytes(b"\0")
    save_image(tmp_path / "out.tif", _rand((4, 4)))
    assert _listing(tmp_path) == sorted(["out.tif", live.name])


def test_dangling_symlink_output_is_named_as_such(tmp_path):
    link = tmp_path / "out.png"
    link.symlink_to(tmp_path / "gone" / "x.png")
    with pytest.raises(ImageError, match="symbolic link to .*x.png, which does not exist"):
        save_image(link, _rand((4, 4)))
    save_image(link, _rand((4, 4)), overwrite=True)  # replaces the link, not a file through it
    assert not link.is_symlink() and load_image(link).shape == (4, 4)


def test_names_over_255_bytes_are_image_errors(tmp_path):
    long = tmp_path / ("a" * 252 + ".png")
    with pytest.raises(ImageError, match="too long"):
        load_image(long)
    with pytest.raises(ImageError, match="too long"):
        save_image(long, _rand((4, 4)))
    ok = tmp_path / ("b" * 247 + ".png")  # 251 bytes: fits; its temporary name is cut to fit
    assert load_image(save_image(ok, _rand((4, 4)))).shape == (4, 4)
    assert _listing(tmp_path) == [ok.name]


# --- only regular files -------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused_without_blocking(tmp_path):
    import threading

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    box: dict[str, BaseException] = {}

    def run():
        try:
            load_image(fifo)
        except BaseException as e:  # noqa: BLE001
            box["e"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(5)
    if t.is_alive():  # unblock the reader so that the test process can end
        open(fifo, "wb").close()
        pytest.fail("load_image blocked on a FIFO")
    assert isinstance(box.get("e"), ImageError) and "FIFO" in str(box["e"])


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_devices_are_refused():
    with pytest.raises(ImageError, match="character device"):
        load_image("/dev/zero")


# --- photometric interpretations -----------------------------------------------------------


def test_miniswhite_tiff_is_inverted(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "mw.tif", np.zeros((8, 8), np.uint8), photometric="miniswhite")
    np.testing.assert_array_equal(load_image(tmp_path / "mw.tif"), np.ones((8, 8), np.float32))
    v = np.full((4, 4), 1000, np.uint16)
    tifffile.imwrite(tmp_path / "mw16.tif", v, photometric="miniswhite", compression="zlib")
    np.testing.assert_allclose(load_image(tmp_path / "mw16.tif"), (65535 - 1000) / 65535, rtol=1e-6)


@pytest.mark.parametrize("compression", [None, "tiff_lzw"])
def test_cmyk_tiff_is_converted_to_rgb(tmp_path, compression):
    a = np.zeros((4, 4, 4), np.uint8)  # (0, 0, 0, 0): no ink, white
    a[0, 0] = (255, 0, 0, 0)  # cyan
    a[0, 1] = (0, 0, 0, 255)  # black
    a[0, 2] = (0, 128, 0, 64)
    p = tmp_path / "c.tif"
    Image.fromarray(a, "CMYK").save(p, **({"compression": compression} if compression else {}))
    y = load_image(p)
    assert y.shape == (4, 4, 3) and image_info(p).channels == 3
    ref = np.asarray(Image.open(p).convert("RGB"), np.float32) / 255
    np.testing.assert_allclose(y, ref, atol=1.01 / 255)
    np.testing.assert_array_equal(y[3, 3], [1, 1, 1])
    np.testing.assert_allclose(y[0, 0], [0, 1, 1])


@pytest.mark.parametrize("ext", [".tif", ".png"])
def test_palette_images_load_as_their_colours(tmp_path, ext):
    im = Image.new("P", (8, 8), 0)
    im.putpalette([255, 0, 0, 0, 255, 0, 10, 20, 30] + [0] * 759)
    im.putpixel((1, 1), 1)
    im.putpixel((2, 1), 2)
    p = tmp_path / f"p{ext}"
    im.save(p)
    y = load_image(p)
    assert y.shape == (8, 8, 3) and image_info(p).channels == 3
    np.testing.assert_allclose(y[0, 0], [1, 0, 0])
    np.testing.assert_allclose(y[1, 1], [0, 1, 0])
    np.testing.assert_allclose(y[1, 2], np.array([10, 20, 30]) / 255, atol=1e-6)


def test_low_bit_depth_tiff_uses_its_full_scale(tmp_path):
    Image.new("1", (8, 8), 1).save(tmp_path / "b1.tif")
    np.testing.assert_array_equal(load_image(tmp_path / "b1.tif"), np.ones((8, 8), np.float32))


def test_unsupported_photometric_is_named(tmp_path):
    Image.new("LAB", (8, 8), (100, 128, 128)).save(tmp_path / "lab.tif")
    with pytest.raises(ImageError, match="photometric interpretation CIELAB"):
        load_image(tmp_path / "lab.tif")


# --- memory --------------------------------------------------------------------------------


def test_memory_budget_refuses_before_decoding(tmp_path, monkeypatch):
    from restorelab.io import load_memory_estimate, memory_budget

    a = np.random.default_rng(0).integers(0, 65536, (64, 64, 4), dtype=np.uint16)
    p = save_image(tmp_path / "a.png", a.astype(np.float32) / 65535, bit_depth=16)
    info = image_info(p)
    need = load_memory_estimate(info)
    assert need == 64 * 64 * 4 * (2 + 4)  # the 16-bit decode and the float32 result
    monkeypatch.setenv("RESTORELAB_MAX_MEMORY", str(need - 1))
    assert memory_budget() == need - 1
    with pytest.raises(ImageError, match="memory"):
        load_image(p)
    monkeypatch.setenv("RESTORELAB_MAX_MEMORY", "1M")
    assert memory_budget() == 1 << 20
    np.testing.assert_allclose(load_image(p), a / 65535, atol=1e-7)


# --- masks ---------------------------------------------------------------------------------


def test_mask_rule_is_half_of_full_scale(tmp_path):
    import warnings

    from restorelab.io import load_mask

    m = np.zeros((10, 10), np.uint8)
    m[0, :5] = (127, 128, 255, 1, 200)
    Image.fromarray(m).save(tmp_path / "m.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 5 % mid-grey pixels: no warning
        sel = load_mask(tmp_path / "m.png", (10, 10))
    assert sel.dtype == bool and sel.sum() == 3 and list(sel[0, :5]) == [False, True, True, False, True]
    Image.fromarray(np.full((10, 10), 60, np.uint8)).save(tmp_path / "grey.png")
    with pytest.warns(UserWarning, match="mid-grey"):
        assert not load_mask(tmp_path / "grey.png").any()
    with pytest.raises(ImageError, match="10x10 but the image is 12x10"):
        load_mask(tmp_path / "m.png", (10, 12))


def test_truncated_tiff_is_a_quiet_image_error(tmp_path, camera_small, capfd):
    data = save_image(tmp_path / "a.tif", camera_small, bit_depth=16).read_bytes()
    for n, cut in (("half.tif", len(data) // 2), ("head.tif", 60)):
        (tmp_path / n).write_bytes(data[:cut])
        with pytest.raises(ImageError, match=n):
            load_image(tmp_path / n)
    assert capfd.readouterr().err == ""  # no OpenCV/libtiff log lines, just the exception


def test_image_error_pickles():
    import pickle

    e = pickle.loads(pickle.dumps(ImageError("/x/a.png", "truncated PNG")))
    assert (e.path, e.reason, str(e)) == ("/x/a.png", "truncated PNG", "/x/a.png: truncated PNG")


def test_save_follows_the_one_image_policy(tmp_path):
    from restorelab.image import as_float_image

    b = np.zeros((4, 5), bool)
    b[1, 2] = True
    np.testing.assert_array_equal(load_image(save_image(tmp_path / "b.png", b)), as_float_image(b))
    import torch

    t = torch.zeros((3, 4, 5))
    t[1] = 1.0
    assert load_image(save_image(tmp_path / "t.png", t)).shape == (4, 5, 3)
    with pytest.raises(ImageError, match="NaN"):
        save_image(tmp_path / "n.png", np.full((2, 2), np.nan, np.float32))


def test_gray_alpha_tiff_loads_as_rgba(tmp_path):
    import tifffile

    a = np.zeros((8, 8, 2), np.uint8)
    a[..., 0], a[..., 1] = 100, 200
    tifffile.imwrite(tmp_path / "ga.tif", a, photometric="minisblack", extrasamples=["unassalpha"])
    y = load_image(tmp_path / "ga.tif")
    assert y.shape == (8, 8, 4) and image_info(tmp_path / "ga.tif").channels == 4
    np.testing.assert_allclose(y[0, 0] * 255, [100, 100, 100, 200], atol=1e-3)
