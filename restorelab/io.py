"""Image input/output: float32 images in [0, 1], safe against bad files.

* :func:`load_image` returns float32 (H, W) or (H, W, C) with C in {3, 4} (RGB, RGBA),
  values in [0, 1] for 8/16-bit files (``/255`` or ``/65535``; 1..15-bit samples over
  their own full scale); float32 TIFF and ``.npy`` are returned unclipped (lossless float
  pipelines). The EXIF orientation is applied (same mapping as
  ``PIL.ImageOps.exif_transpose``). TIFF photometric interpretations are converted
  (MinIsWhite inverted, palette through its ColorMap, CMYK to RGB) or refused by name
  (:data:`TIFF_PHOTOMETRIC`); PNG palettes and gray + alpha become RGB(A).
* :func:`save_image` writes PNG, JPEG, TIFF (8/16 bit, or float32 TIFF) and ``.npy``
  through the project's one atomic writer, :func:`restorelab.safety.atomic_write`
  (temporary file in the destination folder, fsync, rename; temporary files of killed
  writers removed); an existing file is never replaced unless ``overwrite=True``; nothing
  partial is left behind on failure.
* Every bad input (missing, a folder, a FIFO or device, zero bytes, truncated, not an
  image, an unsupported depth, format or photometric interpretation, a header claiming
  more than :data:`MAX_PIXELS` pixels or more memory than :func:`memory_budget`, NaN, a
  name over 255 bytes) raises :class:`ImageError` whose message names the file and the
  reason. The header is parsed before anything is decoded, so an oversized image fails
  without allocating it; the conversion to float runs in bands, so a load peaks at the
  decoded samples plus the float32 result (:func:`load_memory_estimate`).
* :func:`load_mask` is the one mask rule: a pixel is selected when it is at least half of
  full scale.

Decoders: OpenCV (PNG, JPEG, and TIFF compressions that ``tifffile`` cannot decode
without ``imagecodecs``), ``tifffile`` (TIFF), ``numpy.load(allow_pickle=False)`` (.npy,
memory-mapped).
"""

from __future__ import annotations

import errno
import io
import os
import stat
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from restorelab.image import as_float_image

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
    "check_writable",
    "load_mask",
    "memory_budget",
    "load_memory_estimate",
    "parse_bytes",
    "TIFF_PHOTOMETRIC",
]

#: default limit on width × height; override with the ``max_pixels`` argument or the
#: environment variable ``RESTORELAB_MAX_PIXELS``
MAX_PIXELS = 200_000_000

#: longest file name in bytes (ext4, xfs, btrfs, APFS, NTFS)
NAME_MAX = 255

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
    photometric: str = ""  # TIFF only: the PhotometricInterpretation's tifffile name
    colormap: Any = None  # TIFF palette: (3, 2**bits) uint16
    samples: int = 0  # TIFF: samples per pixel stored (before the photometric conversion)
    jpeg: bool = False  # TIFF: JPEG-compressed


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


#: TIFF PhotometricInterpretation values :func:`load_image` converts, and how
TIFF_PHOTOMETRIC = {
    "MINISBLACK": "as stored",
    "MINISWHITE": "inverted (0 is white)",
    "RGB": "as stored (a 4th sample is alpha)",
    "PALETTE": "indices looked up in the ColorMap, RGB",
    "SEPARATED": "CMYK (InkSet 1, 4 inks) to RGB: R = (1 - C)(1 - K), ...",
    "YCBCR": "JPEG-compressed only (the JPEG codec returns RGB)",
}


def _tiff_photometric(path: Path, page: Any, c: int) -> tuple[str, int, Any]:
    """(interpretation name, channels load_image returns, colormap) of a TIFF page, or
    ImageError for an interpretation outside :data:`TIFF_PHOTOMETRIC`."""
    ph = page.photometric
    name = getattr(ph, "name", str(ph))
    jpeg = getattr(page.compression, "name", "") in ("JPEG", "OJPEG")
    if name not in TIFF_PHOTOMETRIC or (name == "YCBCR" and not jpeg):
        what = "YCbCr without JPEG compression" if name == "YCBCR" else name
        ok = ", ".join(TIFF_PHOTOMETRIC)
        raise ImageError(path, f"unsupported TIFF photometric interpretation {what} (supported: {ok})")
    if name == "PALETTE":
        cmap = page.colormap
        if c != 1 or cmap is None:
            raise ImageError(path, "damaged palette TIFF (no ColorMap, or more than one sample per pixel)")
        return name, 3, np.asarray(cmap)
    if name == "SEPARATED":
        tag = page.tags.get("InkSet")
        inkset = int(tag.value) if tag is not None else 1
        if inkset != 1 or c != 4:
            raise ImageError(path, f"unsupported separated TIFF (ink set {inkset}, {c} inks); only CMYK "
                             "(4 inks) is converted")
        return name, 3, None
    if name == "MINISWHITE" and c != 1:
        raise ImageError(path, f"unsupported MinIsWhite TIFF with {c} samples per pixel (1)")
    if (name == "MINISBLACK" and c not in (1, 2)) or (name in ("RGB", "YCBCR") and c not in (3, 4)):
        raise ImageError(path, f"unsupported {name} TIFF with {c} samples per pixel")
    return name, (4 if c == 2 else c), None  # gray + alpha is returned as RGBA


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
            jpeg = getattr(page.compression, "name", "") in ("JPEG", "OJPEG")
        except Exception as e:
            raise ImageError(path, f"damaged or unsupported TIFF ({type(e).__name__}: {e})") from None
        if h == 0 or w == 0:
            raise ImageError(path, f"unsupported TIFF layout (axes {page.axes}, shape {page.shape})")
        _check_size(path, h, w, limit)
        if dtype is None or dtype.kind not in "buf" or (dtype.kind == "u" and dtype.itemsize > 2):
            raise ImageError(path, f"unsupported TIFF sample type {dtype} (1..16-bit unsigned or float)")
        if c not in (1, 2, 3, 4):
            raise ImageError(path, f"unsupported TIFF with {c} samples per pixel (1 to 4)")
        photometric, channels, cmap = _tiff_photometric(path, page, c)
    except BaseException:
        tf.close()
        raise
    depth = 1 if dtype.kind == "b" else dtype.itemsize * 8
    if dtype.kind == "u" and bps and bps < depth:
        depth = int(bps)
    hd = _Header("tiff", h, w, channels, depth, orientation if 1 <= orientation <= 8 else 1,
                 photometric=photometric, colormap=cmap, samples=c, jpeg=jpeg)
    return hd, tf


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


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, from its ``st_mode`` (for error messages)."""
    for test, what in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


def _open_regular(path: Path) -> Any:
    """Open ``path`` for reading only if it is a regular file: ``stat`` first (a FIFO or
    ``/dev/zero`` would block or never end), then ``O_NONBLOCK`` and ``fstat`` on the open
    descriptor (the name may have been replaced in between). ImageError otherwise."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageError(path, "no such file") from None
    except PermissionError:
        raise ImageError(path, "permission denied") from None
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            n = len(path.name.encode("utf-8", "surrogateescape"))
            raise ImageError(path, f"the file name is too long ({n} bytes; file systems allow 255)") from None
        raise ImageError(path, f"cannot read ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(path, "is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(path, f"is {file_kind(st.st_mode)}, not a regular file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except PermissionError:
        raise ImageError(path, "permission denied") from None
    except OSError as e:
        raise ImageError(path, f"cannot read ({e.strerror or e})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ImageError(path, f"is {file_kind(mode)}, not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read(path: Path, size: int = -1) -> bytes:
    """The first ``size`` bytes (all with -1) of a regular file, with an ImageError for
    every OS-level problem."""
    with _open_regular(path) as f:
        try:
            data = f.read(size)
        except OSError as e:
            raise ImageError(path, f"cannot read ({e.strerror or e})") from None
    if not data:
        raise ImageError(path, "empty file (0 bytes)")
    return data


_HEAD = 1 << 16


def _open(path: Path, max_pixels: int | None, max_bytes: int | None = None) -> tuple[_Header, Any]:
    """Parse the header and check the pixel limit before any pixel data is read (and, with
    ``max_bytes``, that a PNG/JPEG file whose bytes are read whole is not larger).

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
    if max_bytes is not None and len(head) == _HEAD:
        size = os.stat(path).st_size
        if size > max_bytes:
            raise ImageError(path, f"the file of {_gib(size)} is over the memory budget of {_gib(max_bytes)} "
                             "(raise it with RESTORELAB_MAX_MEMORY)")
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
    if a.ndim == 3 and a.shape[2] in (3, 4):
        _swap_rb(a)
    return a


def _tiff_decode(path: Path, hd: _Header, tf: Any) -> np.ndarray:
    try:
        page = tf.pages.first
        a = page.asarray()
        axes = page.axes
        order = [axes.index(k) for k in "YXS" if k in axes]
        extra = [i for i in range(a.ndim) if i not in order]
        if any(a.shape[i] != 1 for i in extra):
            raise ImageError(path, f"unsupported TIFF layout (axes {axes}, shape {a.shape})")
        a = np.transpose(a, order + extra).reshape([a.shape[i] for i in order])
        return _tiff_convert(path, hd, a)
    except ImageError:
        raise
    except MemoryError:
        raise
    except Exception:
        pass
    finally:
        tf.close()
    # e.g. LZW/JPEG compression without the optional imagecodecs package: libtiff decodes it.
    # Up to 8 bits OpenCV reads through libtiff's RGBA interface, which converts every
    # interpretation (palette, MinIsWhite, CMYK, YCbCr) to RGB(A) itself; deeper samples
    # come back as stored, and are converted here.
    a = _cv2_decode(path, _read(path), "TIFF")
    if hd.bit_depth > 8:
        if hd.photometric == "SEPARATED" and a.ndim == 3 and a.shape[2] == 4:
            _swap_rb(a)  # the channel swap of _cv2_decode undone: C, M, Y, K
        return _tiff_convert(path, hd, a)
    if hd.channels == 3 and a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]  # the opaque alpha of libtiff's RGBA conversion
    return a


def _tiff_convert(path: Path, hd: _Header, a: np.ndarray) -> np.ndarray:
    """Stored TIFF samples → values on the file's full scale, by PhotometricInterpretation
    (TIFF 6.0, section 3-5 and 16): MinIsWhite inverted, palette through the ColorMap (a map
    with no value over 255, or only multiples of 256, holds 8-bit colours, as libtiff
    reads it), CMYK with the usual
    subtractive rule ``R = (1 - C)(1 - K)``. Integer samples of fewer bits than their
    container (1, 2, 4, 12 bits) are scaled to the container's full scale first."""
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * np.uint8(255)
    elif a.dtype.kind == "u" and 0 < hd.bit_depth < a.dtype.itemsize * 8 and hd.photometric != "PALETTE":
        top = float((1 << hd.bit_depth) - 1)
        a = a.astype(np.float32) / np.float32(top)
    ph = hd.photometric
    if ph == "MINISWHITE":
        if a.dtype.kind == "u":
            a = np.iinfo(a.dtype).max - a
        else:
            a = 1.0 - a.astype(np.float32)
    elif ph == "PALETTE":
        cmap = np.asarray(hd.colormap)
        if a.ndim != 2 or a.dtype.kind != "u":
            raise ImageError(path, f"damaged palette TIFF (index samples of shape {a.shape})")
        if int(a.max(initial=0)) >= cmap.shape[1]:
            raise ImageError(path, f"palette TIFF index {int(a.max())} is outside its ColorMap of "
                             f"{cmap.shape[1]} entries")
        cmap = cmap.astype(np.uint16)
        if cmap.max(initial=0) <= 255:
            cmap = cmap.astype(np.uint8)
        elif not (cmap & 0xFF).any():  # 8-bit colours stored as v·256 (libtiff, Pillow)
            cmap = (cmap >> 8).astype(np.uint8)
        a = np.ascontiguousarray(cmap.T[a])
    elif ph == "SEPARATED":
        top = np.float32(np.iinfo(a.dtype).max) if a.dtype.kind == "u" else np.float32(1)
        f = a.astype(np.float32) / top
        k = 1.0 - f[..., 3:4]
        a = (1.0 - f[..., :3]) * k
    return a


_CHUNK_BYTES = 16 << 20  # conversion works on row bands of about this many output bytes


def _bands(h: int, row_bytes: int) -> Iterator[slice]:
    step = max(1, _CHUNK_BYTES // max(1, row_bytes))
    for i in range(0, h, step):
        yield slice(i, min(h, i + step))


def _swap_rb(a: np.ndarray) -> None:
    """BGR(A) → RGB(A) in place, one band of rows at a time (no full-size temporary)."""
    for b in _bands(a.shape[0], a.shape[1] * a.itemsize):
        t = a[b, :, 0].copy()
        a[b, :, 0] = a[b, :, 2]
        a[b, :, 2] = t


def _to_float(path: Path, a: np.ndarray) -> np.ndarray:
    """Decoded samples (any layout, possibly a strided view) → a new C-contiguous float32
    array: integers over their full scale (x/255, x/65535), floats as they are; gray +
    alpha becomes RGBA. Converted band by band, so the peak is the input plus the output."""
    if a.dtype == np.uint8:
        scale: float | None = 1.0 / 255
    elif a.dtype == np.uint16:
        scale = 1.0 / 65535
    elif a.dtype.kind == "f":
        scale = None
    else:
        raise ImageError(path, f"unsupported sample type {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4)):
        shape = a.shape
    elif a.ndim == 3 and a.shape[2] == 2:  # gray + alpha
        shape = (a.shape[0], a.shape[1], 4)
    else:
        raise ImageError(path, f"unsupported image layout {a.shape}")
    try:
        out = np.empty(shape, np.float32)
    except MemoryError:
        raise ImageError(path, f"not enough memory for a float32 image of shape {shape}") from None
    row = int(np.prod(shape[1:])) * 4
    for b in _bands(shape[0], row):
        if len(shape) == 3 and a.shape[2] == 2:
            out[b, :, :3] = a[b, :, :1]
            out[b, :, 3] = a[b, :, 1]
        else:
            out[b] = a[b]
        if scale is not None:
            out[b] *= np.float32(scale)
        elif not np.isfinite(out[b]).all():
            raise ImageError(path, "contains NaN or infinite values")
    return out


def load_image(
    path: str | os.PathLike, *, max_pixels: int | None = None, max_memory: int | None = None
) -> np.ndarray:
    """Read an image as float32 (H, W) or (H, W, C), C ∈ {3, 4}.

    Integer files are scaled to [0, 1] (x/255, x/65535); float TIFF and ``.npy`` keep their
    values (unclipped). The EXIF orientation is applied; TIFF photometric interpretations
    are converted (:data:`TIFF_PHOTOMETRIC`). Before any pixel data is read, the header is
    checked against the pixel limit (``max_pixels``, else ``$RESTORELAB_MAX_PIXELS``, else
    :data:`MAX_PIXELS`) and the memory the load needs (:func:`load_memory_estimate`)
    against the memory budget (``max_memory``, else :func:`memory_budget`). Only regular
    files are read (a FIFO or a device is refused, never opened for a blocking read). Any
    failure raises :class:`ImageError`.
    """
    p = Path(path)
    budget = memory_budget(max_memory)
    hd, payload = _open(p, max_pixels, budget)
    try:
        need = load_memory_estimate(hd, len(payload) if isinstance(payload, bytes) else 0)
        if need > budget:
            h, w = hd.height, hd.width
            raise ImageError(
                p, f"loading this {w}x{h} image ({hd.channels} channels, {hd.bit_depth}-bit) needs about "
                f"{_gib(need)} of memory, over the budget of {_gib(budget)} (raise it with "
                "RESTORELAB_MAX_MEMORY, e.g. 8G)")
    except BaseException:
        if hasattr(payload, "close"):
            payload.close()
        raise
    if hd.fmt == "png":
        a = _cv2_decode(p, payload, "PNG")
    elif hd.fmt == "jpeg":
        a = _cv2_decode(p, payload, "JPEG")
    elif hd.fmt == "tiff":
        a = _tiff_decode(p, hd, payload)
    else:
        try:
            a = np.load(p, mmap_mode="r", allow_pickle=False)  # read band by band by _to_float
        except Exception as e:
            raise ImageError(p, f"cannot read .npy data ({e})") from None
    del payload
    if a.shape[0] != hd.height or a.shape[1] != hd.width:
        raise ImageError(p, f"decoded size {a.shape[:2]} differs from the header's {(hd.height, hd.width)}")
    return _to_float(p, _orient(a, hd.orientation))


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


#: the memory budget when neither ``max_memory`` nor ``$RESTORELAB_MAX_MEMORY`` says otherwise
#: is half the machine's RAM, at most this
DEFAULT_MAX_MEMORY = 2 << 30


def _total_ram() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 8 << 30


def parse_bytes(text: str) -> int:
    """``"2G"``, ``"512M"``, ``"1.5e9"``, ``"64k"`` → bytes (binary multiples)."""
    t = str(text).strip().upper().removesuffix("B").removesuffix("I")
    mult = 1
    if t and t[-1] in "KMGT":
        mult = 1 << (10 * ("KMGT".index(t[-1]) + 1))
        t = t[:-1]
    try:
        v = float(t) * mult
    except ValueError:
        raise ValueError(f"expected a size in bytes such as 2G or 512M, got {text!r}") from None
    if not (v > 0 and v < float("inf")):
        raise ValueError(f"a memory size must be positive, got {text!r}")
    return int(v)


def memory_budget(max_memory: int | None = None) -> int:
    """Bytes a single load (or a command's working set) may use: the argument, else
    ``$RESTORELAB_MAX_MEMORY`` (``2G``, ``512M``, bytes), else min(RAM / 2,
    :data:`DEFAULT_MAX_MEMORY`). The default keeps a load of any image under the limits
    within about 2 GiB, as the float32 working copy alone of a 200 MP RGB image (2.4 GB)
    would not be; such images need a larger budget."""
    if max_memory is not None:
        if int(max_memory) <= 0:
            raise ValueError(f"the memory budget must be positive, got {max_memory}")
        return int(max_memory)
    env = os.environ.get("RESTORELAB_MAX_MEMORY", "").strip()
    if env:
        try:
            return parse_bytes(env)
        except ValueError as e:
            raise ValueError(f"RESTORELAB_MAX_MEMORY: {e}") from None
    return min(_total_ram() // 2, DEFAULT_MAX_MEMORY)


def load_memory_estimate(hd: _Header | ImageInfo, payload_bytes: int = 0) -> int:
    """Peak bytes :func:`load_image` needs for an image with this header: the compressed
    bytes held (``payload_bytes``), the decoded samples (at their stored depth; a palette
    as indices plus 16-bit RGB), an intermediate float32 copy where the photometric
    conversion computes in float (CMYK, MinIsWhite float, 1..15-bit samples), and the
    float32 result. The conversion to float runs in bands, so no other full-size copy is
    made."""
    px = int(hd.height) * int(hd.width)
    depth = int(hd.bit_depth)
    sample = 1 if depth <= 8 else 2 if depth <= 16 else 4 if depth <= 32 else 8
    ch_out = int(hd.channels)
    photometric = getattr(hd, "photometric", "")
    stored = max(ch_out, int(getattr(hd, "samples", 0) or 0))
    decode = px * stored * sample
    extra = 0
    if photometric == "PALETTE":
        decode = px * sample + px * 3 * 2
    elif photometric == "SEPARATED" or (getattr(hd, "fmt", "") == "tiff" and depth not in (8, 16, 32, 64)):
        extra = px * ch_out * 4
    out = px * ch_out * 4
    return int(payload_bytes) + decode + extra + out


#: a mask pixel is on when its value is at least this fraction of full scale
MASK_THRESHOLD = 0.5
#: warn when more than this fraction of a mask's pixels are neither near 0 nor near 1
MASK_GREY_WARN = 0.05


def mask_from_image(m: np.ndarray, name: str = "mask") -> np.ndarray:
    """The one mask rule: gray value ≥ :data:`MASK_THRESHOLD` (half of full scale) is on.

    A colour mask's gray value is the mean of R, G, B; an alpha channel multiplies it (the
    mask composited over black: a transparent pixel is off). So 8-bit 128 is on and 127
    off, whatever the bit depth. A ``UserWarning`` says when more than 5 % of the pixels
    are mid-grey (between 10 % and 90 %), where the threshold decides what is filled."""
    a = np.asarray(m)
    if a.dtype != np.bool_:
        a = as_float_image(a, name=name)
    a = a.astype(np.float32, copy=False)
    if a.ndim == 3:
        gray = a[:, :, :3].mean(axis=2)
        if a.shape[2] == 4:
            gray *= a[:, :, 3]
    else:
        gray = a
    mid = float(np.mean((gray > 0.1) & (gray < 0.9))) if gray.size else 0.0
    if mid > MASK_GREY_WARN:
        warnings.warn(f"{name}: {mid:.0%} of its pixels are mid-grey; pixels at 50 % grey or brighter "
                      "count as selected", UserWarning, stacklevel=2)
    return gray >= MASK_THRESHOLD


def load_mask(path: str | os.PathLike, shape: tuple[int, ...] | None = None, **kw: Any) -> np.ndarray:
    """Read a mask image as booleans (H, W) with :func:`mask_from_image`'s rule (white, at
    least half of full scale, is on). ``shape`` (the image's) is checked: ImageError when the
    mask's size differs. ``kw`` goes to :func:`load_image`."""
    p = Path(path)
    sel = mask_from_image(load_image(p, **kw), name=f"mask {p}")
    if shape is not None and sel.shape != tuple(shape[:2]):
        raise ImageError(p, f"the mask is {sel.shape[1]}x{sel.shape[0]} but the image is "
                         f"{shape[1]}x{shape[0]}")
    return sel


# ----------------------------------------------------------------------------------------
# encoding and atomic writes
# ----------------------------------------------------------------------------------------


def _as_float_image(path: Path, image: Any) -> np.ndarray:
    """The image to save on the working scale, by the one image policy
    (:func:`restorelab.image.as_float_image`: uint8/uint16/bool/float, (H, W[, C]) or a
    tensor), its refusals turned into an ImageError naming the file."""
    try:
        return as_float_image(image, name="image")
    except (TypeError, ValueError) as e:
        raise ImageError(path, f"cannot save: {e}; nothing written") from None


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


def _write_error(path: Path, e: OSError) -> ImageError:
    """The one-sentence ImageError for an OS error of a write (or a read)."""
    if e.errno == errno.ENAMETOOLONG:
        n = len(path.name.encode("utf-8", "surrogateescape"))
        return ImageError(path, f"the file name is too long ({n} bytes; file systems allow 255)")
    if isinstance(e, PermissionError):
        return ImageError(path, f"permission denied: cannot write in {path.parent}")
    if e.errno == errno.ENOSPC:
        return ImageError(path, "no space left on the device; nothing was written")
    return ImageError(path, f"cannot write ({e.strerror or e})")


def _exists_reason(path: Path) -> str:
    if path.is_symlink() and not path.exists():
        return (f"is a symbolic link to {os.readlink(path)}, which does not exist; remove the link or "
                "use overwrite (--overwrite) to replace it")
    return "exists; use overwrite (--overwrite) to replace it"


def check_writable(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Refuse early what :func:`save_image` would refuse after encoding: a missing folder, a
    folder given as the file, an existing file (or dangling link) without ``overwrite``, a
    name over 255 bytes. Raises :class:`ImageError`; returns the path."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if len(p.name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise _write_error(p, OSError(errno.ENAMETOOLONG, "File name too long"))
    if not parent.is_dir():
        raise ImageError(p, f"the folder {parent} does not exist")
    if p.is_dir():
        raise ImageError(p, "is a folder; give a file name")
    if os.path.lexists(p) and not overwrite:
        raise ImageError(p, _exists_reason(p))
    return p


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
    An existing file is replaced only with ``overwrite=True``. The bytes are written by
    :func:`restorelab.safety.atomic_write` (temporary file, fsync, rename; stale temporary
    files of killed writers removed). Returns the written path; raises :class:`ImageError`
    (and leaves no file behind) on any failure.
    """
    from restorelab.safety import atomic_write_bytes

    p = Path(path)
    fmt = _FORMAT_BY_EXT.get(p.suffix.lower())
    if fmt is None:
        exts = ", ".join(SUPPORTED_EXTENSIONS)
        raise ImageError(p, f"unsupported file extension {p.suffix or '(none)'!r}; use {exts}")
    check_writable(p, overwrite=overwrite)
    a = _as_float_image(p, image)
    data = _encode(p, fmt, a, bit_depth, quality)
    try:
        atomic_write_bytes(p, data, overwrite=overwrite)
    except FileExistsError:
        raise ImageError(p, _exists_reason(p)) from None
    except IsADirectoryError:
        raise ImageError(p, "is a folder; give a file name") from None
    except OSError as e:
        raise _write_error(p, e) from None
    return p
