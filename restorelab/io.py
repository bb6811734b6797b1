"""Image input/output: float32 images in [0, 1], safe against bad files.

* :func:`load_image` returns float32 (H, W) or (H, W, C) with C in {3, 4} (RGB, RGBA),
  values in [0, 1] for 8/16-bit files (``/255`` or ``/65535``); float32 TIFF and ``.npy``
  are returned unclipped (lossless float pipelines). The EXIF orientation tag is applied
  (same mapping as ``PIL.ImageOps.exif_transpose``).
* :func:`save_image` writes PNG, JPEG, TIFF (8/16 bit, or float32 TIFF) and ``.npy``
  atomically: the encoded bytes go to a temporary file in the destination folder, which is
  then renamed over the destination (``os.link``/``os.replace``); an existing file is never
  replaced unless ``overwrite=True``; nothing partial is left behind on failure.
* Every bad input (missing, a folder, zero bytes, truncated, not an image, an unsupported
  depth or format, a header claiming more than :data:`MAX_PIXELS` pixels, NaN) raises
  :class:`ImageError` whose message names the file and the reason. The header is parsed
  before anything is decoded, so an oversized image fails without allocating it.

Decoders: OpenCV (PNG, JPEG, and TIFF compressions that ``tifffile`` cannot decode
without ``imagecodecs``), ``tifffile`` (TIFF), ``numpy.load(allow_pickle=False)`` (.npy).
"""

from __future__ import annotations

import io
import os
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "ImageError",
    "ImageInfo",
    "MAX_PIXELS",
    "SUPPORTED_EXTENSIONS",
    "load_image",
    "save_image",
    "image_info",
    "max_pixels_limit",
    "is_image_path",
]

#: default limit on width × height; override with the ``max_pixels`` argument or the
#: environment variable ``RESTORELAB_MAX_PIXELS``
MAX_PIXELS = 200_000_000

#: file name extensions :func:`save_image` writes and :func:`load_image` expects
SUPPORTED_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")

_FORMAT_BY_EXT = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".npy": "npy",
}


class ImageError(ValueError):
    """A file cannot be read or written as an image; the message names the file and why."""

    def __init__(self, path: Any, reason: str | None = None) -> None:
        if reason is None:  # ImageError("message")
            self.path: str | None = None
            self.reason = str(path)
            super().__init__(self.reason)
        else:
            self.path = str(path)
            self.reason = reason
            super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.reason) if self.path is not None else (self.reason,))


class ImageInfo(NamedTuple):
    """Header facts of an image file: the array :func:`load_image` returns has shape
    (height, width) when ``channels == 1`` else (height, width, channels). ``bit_depth`` is
    the stored depth per sample (1..16 for integers, 32/64 for float)."""

    height: int
    width: int
    channels: int
    bit_depth: int


@dataclass
class _Header:
    fmt: str
    height: int
    width: int
    channels: int
    bit_depth: int
    orientation: int = 1


def is_image_path(path: str | os.PathLike) -> bool:
    """True when the file name has one of :data:`SUPPORTED_EXTENSIONS`."""
    return Path(path).suffix.lower() in _FORMAT_BY_EXT


def max_pixels_limit(max_pixels: int | None = None) -> int:
    """The pixel limit in force: the argument, else ``$RESTORELAB_MAX_PIXELS``, else
    :data:`MAX_PIXELS`."""
    if max_pixels is not None:
        lim = max_pixels
    else:
        env = os.environ.get("RESTORELAB_MAX_PIXELS", "").strip()
        if env:
            try:
                lim = int(float(env))
            except ValueError:
                raise ValueError(f"RESTORELAB_MAX_PIXELS must be an integer, got {env!r}") from None
        else:
            lim = MAX_PIXELS
    if int(lim) <= 0:
        raise ValueError(f"the pixel limit must be positive, got {lim}")
    return int(lim)


# ----------------------------------------------------------------------------------------
# header parsing (no decoding)
# ----------------------------------------------------------------------------------------


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    return None


def _exif_orientation(exif_bytes: bytes) -> int:
    """The orientation tag (0x0112) of raw EXIF data ('Exif\\0\\0' + TIFF), 1 if absent."""
    try:
        from PIL import Image

        exif = Image.Exif()
        exif.load(exif_bytes)
        o = int(exif.get(0x0112, 1))
    except Exception:  # a damaged EXIF block does not make the image unreadable
        return 1
    return o if 1 <= o <= 8 else 1


def _check_size(path: Path, height: int, width: int, limit: int) -> None:
    npx = int(height) * int(width)
    if npx > limit:
        raise ImageError(
            path,
            f"image of {width}x{height} = {npx:,} pixels is over the limit of {limit:,} pixels "
            "(raise it with max_pixels= or RESTORELAB_MAX_PIXELS)",
        )


def _png_ihdr(path: Path, data: bytes) -> tuple[int, int, int, int]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ImageError(path, "truncated or damaged PNG (no IHDR header)")
    width, height, depth, ctype = struct.unpack(">IIBB", data[16:26])
    if width == 0 or height == 0:
        raise ImageError(path, f"PNG header gives an empty size {width}x{height}")
    if ctype not in (0, 2, 3, 4, 6) or depth not in (1, 2, 4, 8, 16):
        raise ImageError(path, f"unsupported PNG colour type {ctype} / bit depth {depth}")
    return height, width, depth, ctype


def _png_header(path: Path, data: bytes, limit: int) -> _Header:
    """IHDR (size checked first), then a walk over the chunk lengths: tRNS, eXIf, and IEND
    (a PNG without IEND is truncated)."""
    height, width, depth, ctype = _png_ihdr(path, data)
    _check_size(path, height, width, limit)
    pos, n = 8, len(data)
    has_trns = False
    seen_idat = False
    orientation = 1
    ended = False
    while pos + 8 <= n:
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > n:
            break
        if kind == b"tRNS":
            has_trns = True
        elif kind == b"eXIf":
            orientation = _exif_orientation(b"Exif\x00\x00" + data[pos + 8 : pos + 8 + length])
        elif kind == b"IDAT":
            seen_idat = True
        elif kind == b"IEND":
            ended = True
            break
        pos = end
    if not ended or not seen_idat:
        raise ImageError(path, "truncated PNG (the file ends before its IEND chunk)")
    channels = {0: 1, 2: 3, 3: 3, 4: 4, 6: 4}[ctype]
    if has_trns and ctype in (2, 3):
        channels = 4
    return _Header("png", height, width, channels, depth, orientation)


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_scan(path: Path, data: bytes) -> tuple[tuple[int, int, int, int] | None, int, int]:
    """Walk the JPEG markers up to the first scan: (SOF size, EXIF orientation, scan start)."""
    pos, n = 2, len(data)
    size = None
    orientation = 1
    while pos < n:
        if data[pos] != 0xFF:
            raise ImageError(path, "damaged JPEG (bad marker structure)")
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        if marker == 0xD9 or pos + 2 > n:
            break
        (seglen,) = struct.unpack(">H", data[pos : pos + 2])
        seg = data[pos + 2 : pos + seglen]
        if marker in _SOF and len(seg) >= 6:
            precision, h, w, nc = struct.unpack(">BHHB", seg[:6])
            size = (h, w, nc, precision)
        elif marker == 0xE1 and seg.startswith(b"Exif\x00\x00"):
            orientation = _exif_orientation(seg)
        elif marker == 0xDA:
            return size, orientation, pos + seglen
        pos += seglen
    return size, orientation, -1


def _jpeg_header(path: Path, data: bytes, limit: int) -> _Header:
    size, orientation, sos = _jpeg_scan(path, data)
    if size is None:
        raise ImageError(path, "truncated or damaged JPEG (no frame header)")
    h, w, nc, precision = size
    if h == 0 or w == 0:
        raise ImageError(path, f"JPEG header gives an empty or undefined size {w}x{h}")
    _check_size(path, h, w, limit)
    # entropy-coded data stuffs 0xFF with 0x00, so FFD9 after the scan start is the real EOI
    if sos < 0 or data.rfind(b"\xff\xd9") < sos:
        raise ImageError(path, "truncated JPEG (the file ends before its end-of-image marker)")
    return _Header("jpeg", h, w, 1 if nc == 1 else 3, precision, orientation)


def _tiff_layout(page: Any) -> tuple[int, int, int]:
    """(height, width, channels) of a tifffile page, whatever its axes order."""
    dims = dict(zip(page.axes, page.shape, strict=False))
    return int(dims.get("Y", 0)), int(dims.get("X", 0)), int(dims.get("S", 1))


def _tiff_header(path: Path, limit: int) -> tuple[_Header, Any]:
    """Read the first IFD with tifffile (lazily: no pixel data is read). Returns the open
    ``TiffFile``, which the caller closes."""
    import tifffile

    try:
        tf = tifffile.TiffFile(str(path))
    except Exception as e:
        raise ImageError(path, f"damaged or unsupported TIFF ({type(e).__name__}: {e})") from None
    try:
        try:
            page = tf.pages.first
            h, w, c = _tiff_layout(page)
            dtype = np.dtype(page.dtype) if page.dtype is not None else None
            otag = page.tags.get("Orientation")
            orientation = int(otag.value) if otag is not None else 1
            bps = page.bitspersample
        except Exception as e:
            raise ImageError(path, f"damaged or unsupported TIFF ({type(e).__name__}: {e})") from None
        if h == 0 or w == 0:
            raise ImageError(path, f"unsupported TIFF layout (axes {page.axes}, shape {page.shape})")
        _check_size(path, h, w, limit)
        if dtype is None or dtype.kind not in "uf" or (dtype.kind == "u" and dtype.itemsize > 2):
            raise ImageError(path, f"unsupported TIFF sample type {dtype} (8/16-bit unsigned or float)")
        if c not in (1, 3, 4):
            raise ImageError(path, f"unsupported TIFF with {c} samples per pixel (1, 3 or 4)")
    except BaseException:
        tf.close()
        raise
    depth = dtype.itemsize * 8
    if dtype.kind == "u" and bps and bps < depth:
        depth = int(bps)
    return _Header("tiff", h, w, c, depth, orientation if 1 <= orientation <= 8 else 1), tf


def _npy_header(path: Path, head: bytes, limit: int) -> _Header:
    from numpy.lib import format as npformat

    try:
        f = io.BytesIO(head)
        version = npformat.read_magic(f)
        if version == (1, 0):
            shape, _fortran, dtype = npformat.read_array_header_1_0(f)
        else:
            shape, _fortran, dtype = npformat.read_array_header_2_0(f)
    except Exception as e:
        raise ImageError(path, f"damaged .npy header ({e})") from None
    if dtype.hasobject:
        raise ImageError(path, ".npy holds Python objects; only numeric arrays are read (no pickle)")
    if len(shape) == 2:
        c = 1
    elif len(shape) == 3 and shape[2] in (1, 3, 4):
        c = shape[2]
    else:
        raise ImageError(path, f"unsupported .npy shape {shape}; expected (H, W) or (H, W, C), C in 1, 3, 4")
    if shape[0] == 0 or shape[1] == 0:
        raise ImageError(path, f"empty .npy image of shape {shape}")
    _check_size(path, shape[0], shape[1], limit)
    if dtype.kind not in "uf" or (dtype.kind == "u" and dtype.itemsize > 2):
        raise ImageError(path, f"unsupported .npy dtype {dtype} (float, uint8 or uint16)")
    return _Header("npy", int(shape[0]), int(shape[1]), 1 if c == 1 else c, dtype.itemsize * 8)


def _read(path: Path, size: int = -1) -> bytes:
    """The first ``size`` bytes (all with -1), with an ImageError for every OS-level problem."""
    if not path.exists():
        raise ImageError(path, "no such file")
    if path.is_dir():
        raise ImageError(path, "is a folder, not an image file")
    try:
        with open(path, "rb") as f:
            data = f.read(size)
    except PermissionError:
        raise ImageError(path, "permission denied") from None
    except OSError as e:
        raise ImageError(path, f"cannot read ({e.strerror or e})") from None
    if not data:
        raise ImageError(path, "empty file (0 bytes)")
    return data


_HEAD = 1 << 16


def _open(path: Path, max_pixels: int | None) -> tuple[_Header, Any]:
    """Parse the header and check the pixel limit before any pixel data is read.

    Returns the header and the payload for decoding: the file's bytes (PNG, JPEG), an open
    ``TiffFile`` (TIFF) or None (.npy).
    """
    limit = max_pixels_limit(max_pixels)
    head = _read(path, _HEAD)
    fmt = _sniff(head[:16])
    if fmt is None:
        ext = path.suffix.lower()
        what = "unknown format"
        if ext in _FORMAT_BY_EXT:
            what = f"a {ext} name but no {_FORMAT_BY_EXT[ext].upper()} signature"
        raise ImageError(path, f"not an image ({what}); supported: PNG, JPEG, TIFF, .npy")
    if fmt == "tiff":
        return _tiff_header(path, limit)
    if fmt == "npy":
        return _npy_header(path, head, limit), None
    if fmt == "png":
        h, w, _, _ = _png_ihdr(path, head)
        _check_size(path, h, w, limit)
    else:
        size, _, _ = _jpeg_scan(path, head)
        if size is not None:
            _check_size(path, size[0], size[1], limit)
    data = head if len(head) < _HEAD else _read(path)
    if fmt == "png":
        return _png_header(path, data, limit), data
    return _jpeg_header(path, data, limit), data


def image_info(path: str | os.PathLike, *, max_pixels: int | None = None) -> ImageInfo:
    """(height, width, channels, bit_depth) read from the file header, without decoding.

    The size is the displayed one (after the EXIF orientation); ``channels`` is that of the
    array :func:`load_image` returns. Raises :class:`ImageError` like :func:`load_image`.
    """
    p = Path(path)
    hd, payload = _open(p, max_pixels)
    if hasattr(payload, "close"):
        payload.close()
    h, w = (hd.width, hd.height) if hd.orientation >= 5 else (hd.height, hd.width)
    return ImageInfo(h, w, hd.channels, hd.bit_depth)


# ----------------------------------------------------------------------------------------
# decoding
# ----------------------------------------------------------------------------------------


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) like ``PIL.ImageOps.exif_transpose``."""
    if orientation == 2:
        a = a[:, ::-1]
    elif orientation == 3:
        a = a[::-1, ::-1]
    elif orientation == 4:
        a = a[::-1]
    elif orientation == 5:
        a = np.swapaxes(a, 0, 1)
    elif orientation == 6:
        a = np.rot90(a, -1)
    elif orientation == 7:
        a = np.swapaxes(a, 0, 1)[::-1, ::-1]
    elif orientation == 8:
        a = np.rot90(a, 1)
    return a


def _cv2_decode(path: Path, data: bytes, what: str) -> np.ndarray:
    import cv2

    log = cv2.utils.logging
    old = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)  # the failure becomes an ImageError, not log lines
    try:
        a = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as e:
        msg = str(e).strip().splitlines()[-1]
        raise ImageError(path, f"cannot decode {what} ({msg})") from None
    finally:
        log.setLogLevel(old)
    if a is None:
        raise ImageError(path, f"cannot decode {what} (damaged or truncated data)")
    if a.ndim == 3:
        if a.shape[2] == 3:
            a = a[:, :, ::-1]
        elif a.shape[2] == 4:
            a = a[:, :, [2, 1, 0, 3]]
    return a


def _tiff_decode(path: Path, tf: Any) -> np.ndarray:
    try:
        page = tf.pages.first
        a = page.asarray()
        axes = page.axes
        order = [axes.index(k) for k in "YXS" if k in axes]
        extra = [i for i in range(a.ndim) if i not in order]
        if any(a.shape[i] != 1 for i in extra):
            raise ImageError(path, f"unsupported TIFF layout (axes {axes}, shape {a.shape})")
        return np.transpose(a, order + extra).reshape([a.shape[i] for i in order])
    except ImageError:
        raise
    except Exception:
        pass
    finally:
        tf.close()
    # e.g. LZW/JPEG compression without the optional imagecodecs package: libtiff decodes it
    return _cv2_decode(path, _read(path), "TIFF")


def _to_float(path: Path, a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        out = a.astype(np.float32) / np.float32(255)
    elif a.dtype == np.uint16:
        out = a.astype(np.float32) / np.float32(65535)
    elif a.dtype.kind == "f":
        out = a.astype(np.float32)
        if not np.isfinite(out).all():
            raise ImageError(path, "contains NaN or infinite values")
    else:
        raise ImageError(path, f"unsupported sample type {a.dtype}")
    if out.ndim == 3 and out.shape[2] == 1:
        out = out[:, :, 0]
    elif out.ndim == 3 and out.shape[2] == 2:  # gray + alpha
        out = np.concatenate([out[:, :, :1]] * 3 + [out[:, :, 1:]], axis=2)
    elif not (out.ndim == 2 or (out.ndim == 3 and out.shape[2] in (3, 4))):
        raise ImageError(path, f"unsupported image layout {a.shape}")
    return np.ascontiguousarray(out)


def load_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image as float32 (H, W) or (H, W, C), C ∈ {3, 4}.

    Integer files are scaled to [0, 1] (x/255, x/65535); float TIFF and ``.npy`` keep their
    values (unclipped). The EXIF orientation is applied. The header is checked against the
    pixel limit (``max_pixels``, else ``$RESTORELAB_MAX_PIXELS``, else :data:`MAX_PIXELS`)
    before any pixel data is read. Any failure raises :class:`ImageError`.
    """
    p = Path(path)
    hd, payload = _open(p, max_pixels)
    if hd.fmt == "png":
        a = _cv2_decode(p, payload, "PNG")
    elif hd.fmt == "jpeg":
        a = _cv2_decode(p, payload, "JPEG")
    elif hd.fmt == "tiff":
        a = _tiff_decode(p, payload)
    else:
        try:
            a = np.load(p, allow_pickle=False)
        except Exception as e:
            raise ImageError(p, f"cannot read .npy data ({e})") from None
    if a.shape[0] != hd.height or a.shape[1] != hd.width:
        raise ImageError(p, f"decoded size {a.shape[:2]} differs from the header's {(hd.height, hd.width)}")
    return _to_float(p, _orient(a, hd.orientation))


# ----------------------------------------------------------------------------------------
# encoding and atomic writes
# ----------------------------------------------------------------------------------------


def _as_float_image(path: Path, image: Any) -> np.ndarray:
    torch = sys.modules.get("torch")  # a tensor implies torch is imported; don't import it here
    if not isinstance(image, np.ndarray) and torch is not None and isinstance(image, torch.Tensor):
        t = image.detach().cpu().float()
        image = (t.permute(1, 2, 0) if t.ndim == 3 else t).numpy()
    if not isinstance(image, np.ndarray):
        raise ImageError(path, f"cannot save a {type(image).__name__}; expected a numpy array")
    a = image
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255
    elif a.dtype == np.uint16:
        a = a.astype(np.float32) / 65535
    elif a.dtype.kind == "f":
        a = a.astype(np.float32, copy=False)
    else:
        raise ImageError(path, f"cannot save dtype {a.dtype}; expected float in [0, 1], uint8 or uint16")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ImageError(path, f"cannot save shape {image.shape}; expected (H, W) or (H, W, C), C in 1, 3, 4")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(path, f"cannot save an empty image of shape {image.shape}")
    if not np.isfinite(a).all():
        raise ImageError(path, "image contains NaN or infinite values; nothing written")
    return a


def _quantize(a: np.ndarray, bits: int) -> np.ndarray:
    """Clip to [0, 1] and round to the nearest integer level (not truncate)."""
    top = 255 if bits == 8 else 65535
    q = np.rint(np.clip(a, 0.0, 1.0) * np.float32(top))
    return q.astype(np.uint8 if bits == 8 else np.uint16)


def _encode(path: Path, fmt: str, a: np.ndarray, bit_depth: int | None, quality: int) -> bytes:
    if bit_depth not in (None, 8, 16, 32):
        raise ImageError(path, f"unsupported bit depth {bit_depth}; use 8, 16 or 32 (float)")
    if fmt in ("png", "jpeg"):
        import cv2

        bits = bit_depth or 8
        if fmt == "jpeg" and bits != 8:
            raise ImageError(path, f"JPEG stores 8 bits per sample, not {bits}; use PNG or TIFF")
        if fmt == "png" and bits == 32:
            raise ImageError(path, "PNG cannot store float32; use .tif or .npy")
        if fmt == "jpeg" and a.ndim == 3 and a.shape[2] == 4:
            raise ImageError(path, "JPEG cannot store an alpha channel; use PNG or TIFF")
        q = _quantize(a, bits)
        if q.ndim == 3:
            q = q[:, :, [2, 1, 0, 3]] if q.shape[2] == 4 else q[:, :, ::-1]
        if fmt == "jpeg":
            params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        else:
            params = [cv2.IMWRITE_PNG_COMPRESSION, 6]
        try:
            ok, buf = cv2.imencode(".png" if fmt == "png" else ".jpg", np.ascontiguousarray(q), params)
        except cv2.error as e:
            msg = str(e).strip().splitlines()[-1]
            raise ImageError(path, f"cannot encode {fmt.upper()} ({msg})") from None
        if not ok:
            raise ImageError(path, f"cannot encode {fmt.upper()}")
        return buf.tobytes()
    if fmt == "tiff":
        import tifffile

        bits = bit_depth or 8
        arr = a if bits == 32 else _quantize(a, bits)
        kw: dict[str, Any] = {"compression": "zlib"}
        if arr.ndim == 3:
            kw["photometric"] = "rgb"
            if arr.shape[2] == 4:
                kw["extrasamples"] = ("unassalpha",)
        else:
            kw["photometric"] = "minisblack"
        bio = io.BytesIO()
        try:
            tifffile.imwrite(bio, np.ascontiguousarray(arr), **kw)
        except Exception as e:
            raise ImageError(path, f"cannot encode TIFF ({e})") from None
        return bio.getvalue()
    # npy
    if bit_depth in (8, 16):
        arr = _quantize(a, bit_depth)
    else:
        arr = np.ascontiguousarray(a, dtype=np.float32)
    bio = io.BytesIO()
    np.save(bio, arr, allow_pickle=False)
    return bio.getvalue()


def _file_mode() -> int:
    """0o666 less the process umask (read without changing it, where /proc allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    return 0o644


def _atomic_write(path: Path, data: bytes, overwrite: bool) -> None:
    parent = path.parent
    if not parent.is_dir():
        raise ImageError(path, f"the folder {parent} does not exist")
    if path.is_dir():
        raise ImageError(path, "is a folder; give a file name")
    if path.exists() and not overwrite:
        raise ImageError(path, "exists; use overwrite (--overwrite) to replace it")
    try:
        fd, tmp = tempfile.mkstemp(dir=str(parent), prefix=f".{path.name}.", suffix=".tmp")
    except PermissionError:
        raise ImageError(path, f"permission denied: cannot write in {parent}") from None
    except OSError as e:
        raise ImageError(path, f"cannot write in {parent} ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic, fails if the destination appeared meanwhile
            except FileExistsError:
                raise ImageError(path, "exists; use overwrite (--overwrite) to replace it") from None
            except OSError:  # no hard links on this file system
                if path.exists():
                    raise ImageError(path, "exists; use overwrite (--overwrite) to replace it") from None
                os.replace(tmp, path)
    except ImageError:
        raise
    except OSError as e:
        raise ImageError(path, f"cannot write ({e.strerror or e})") from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def save_image(
    path: str | os.PathLike,
    image: Any,
    *,
    overwrite: bool = False,
    bit_depth: int | None = None,
    quality: int = 95,
) -> Path:
    """Write ``image`` (float in [0, 1], (H, W) or (H, W, C), C ∈ {1, 3, 4}) atomically.

    The format follows the extension (PNG, JPEG, TIFF, .npy). ``bit_depth``: ``None`` → 8-bit
    PNG/JPEG/TIFF and float32 ``.npy``; ``16`` → 16-bit PNG/TIFF; ``32`` → float32 TIFF/.npy
    (unclipped). Integer formats are clipped to [0, 1] and rounded to the nearest level.
    An existing file is replaced only with ``overwrite=True``. Returns the written path;
    raises :class:`ImageError` (and leaves no file behind) on any failure.
    """
    p = Path(path)
    fmt = _FORMAT_BY_EXT.get(p.suffix.lower())
    if fmt is None:
        exts = ", ".join(SUPPORTED_EXTENSIONS)
        raise ImageError(p, f"unsupported file extension {p.suffix or '(none)'!r}; use {exts}")
    a = _as_float_image(p, image)
    data = _encode(p, fmt, a, bit_depth, quality)
    _atomic_write(p, data, overwrite)
    return p
