"""Session files: save and reopen a working session, without pickle.

A session is a JSON document (``format: "restorelab-session"``, ``version: 1``) plus one
sidecar ``.npz`` holding every array (masks, clone masks, the working image, sampler
samples/mean/std/logs/frames), written with ``numpy.savez`` on numeric arrays only and
read back with ``allow_pickle=False``. The JSON names the sidecar and its SHA-256::

    photo.rlsession                         the JSON document
    photo.rlsession.<sha16>.npz             its arrays (content-addressed)

Saving is atomic and crash-safe: the sidecar is written first under a new name derived from
its content, then the JSON replaces the old one with :func:`os.replace`, then sidecars no
longer referenced are removed, all through :func:`restorelab.safety.atomic_write`. A
process killed at any point leaves either the old session or the new one, both complete.
Two processes (or threads) saving the same session are serialised by an exclusive
``fcntl.flock`` on ``.NAME.lock`` beside it (removed by its holder). A reader that finds
the sidecar it was told about already replaced by a concurrent save reads the new
document again, so it never reports a missing array file for a complete session.

Reading trusts nothing in the file:

* **Names are never patterns.** The sidecars of ``NAME`` are the folder entries named
  ``NAME.<16 hex>.npz``, compared as strings (a name may hold ``[1]``, ``?``, ``*``).
* **Only regular files are opened**, checked with ``os.stat`` before the open and
  ``fstat`` after an ``O_NONBLOCK`` open: a FIFO, ``/dev/zero``, ``/dev/urandom``, a
  socket or a folder named by a session is refused at once with :class:`SessionError`,
  never read (so nothing blocks or reads forever).
* **The image path.** A relative ``image_path`` is resolved against the session's folder
  (not the current directory) and must stay inside it: ``../`` or a link leading out is
  refused. An absolute path is the user's own photo elsewhere and is allowed, but only a
  regular file; it is hashed up to :data:`MAX_HASH_BYTES` (a larger file is not compared,
  and a warning says so). The resolved file is ``Session.image_file``.
* **Bounded arrays.** Every array the document declares (shape, dtype) is checked before
  the sidecar is opened: the working image within the pixel limit
  (:func:`restorelab.io.max_pixels_limit`), masks of the image's size, and all arrays
  together within :func:`sidecar_budget` (proportional to the declared image, never over
  :func:`restorelab.io.memory_budget`). Each zip member's declared uncompressed size and
  its ``.npy`` header must match the declaration before a byte is decompressed, so a
  2 MB zip bomb costs nothing.
* **Finite pixels.** A working image, mask or sampler result holding NaN or ±inf is
  refused (never silently turned into zeros).
* **Valid parameters.** :func:`validate_session` checks every method choice against the
  declared :class:`~restorelab.params.Param` of its method (type and range), σ against
  its range, seeds and clone placements, so an application can replace its document only
  with a session that restores completely.

Errors are :class:`SessionError` with one clear sentence (a newer version, damaged JSON, a
missing or corrupt sidecar, any refusal above). A changed or missing source image is *not*
an error: ``Session.image_changed`` / ``Session.image_missing`` are set and a warning is
added to ``Session.warnings``.

:class:`Autosaver` writes the current session into a folder every few minutes (and when
asked, e.g. after a completed job) and lists what a crashed run left behind.
``RESTORELAB_NO_AUTOSAVE=1`` turns it off (the tests set it).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import math
import os
import re
import stat
import time
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from restorelab.safety import NAME_MAX, atomic_write, check_free_space, cleanup_stale_temps, pid_alive
from restorelab.sample_result import SampleResult

try:  # POSIX; elsewhere saves are not serialised between processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "FORMAT",
    "VERSION",
    "SUFFIX",
    "SessionError",
    "MaskLayer",
    "ClonePlacement",
    "MethodChoice",
    "SampleResult",
    "Session",
    "save_session",
    "load_session",
    "validate_session",
    "sidecar_budget",
    "resolve_image_path",
    "sample_result_to_json",
    "sample_result_from_json",
    "file_sha256",
    "Autosaver",
    "RecoverableSession",
    "default_autosave_dir",
]

FORMAT = "restorelab-session"
VERSION = 1
SUFFIX = ".rlsession"
#: largest JSON document read (bytes) and largest array accepted (elements)
MAX_JSON_BYTES = 64 << 20
MAX_ARRAY_ELEMENTS = 1 << 31
#: bytes a session's arrays may hold per pixel of its declared image: 64 full-size float32
#: RGBA planes (image, masks, clone masks, sampler samples/mean/std) ...
SIDECAR_BYTES_PER_PIXEL = 64 * 16
#: ... plus this much whatever the image (logs, thumbnails, clone masks of other images)
SIDECAR_BASE_BYTES = 64 << 20
#: a source image larger than this is not hashed when a session is read (a warning says so)
MAX_HASH_BYTES = 4 << 30
#: longest session file name (bytes): its sidecar ``NAME.<16 hex>.npz`` must fit in 255 bytes
MAX_NAME_BYTES = NAME_MAX - len(".0123456789abcdef.npz")
#: seeds are stored as non-negative integers below this
SEED_LIMIT = 2**63
#: largest clone offset (pixels) along either axis
MAX_OFFSET = 1 << 24
_ARRAY_DTYPES = {"bool", "uint8", "uint16", "int32", "int64", "float32", "float64"}
CLONE_MODES = ("import", "mixed", "average", "paste", "replace")


class SessionError(ValueError):
    """A session file cannot be read: newer version, damaged JSON, missing/corrupt sidecar."""


# ----------------------------------------------------------------------------- data classes
def _arr_ref(arrays: dict[str, np.ndarray], key: str, a: np.ndarray | None) -> dict[str, Any] | None:
    if a is None:
        return None
    a = np.asarray(a)
    if a.dtype.name not in _ARRAY_DTYPES:
        raise TypeError(f"array {key!r}: dtype {a.dtype} cannot be stored in a session (numeric only)")
    arrays[key] = np.ascontiguousarray(a)
    return {"$array": key, "shape": list(a.shape), "dtype": a.dtype.name}


def _get_arr(
    ref: Any, arrays: Mapping[str, np.ndarray], what: str, *, optional: bool = False
) -> np.ndarray | None:
    if ref is None and optional:
        return None
    if not isinstance(ref, dict) or not isinstance(ref.get("$array"), str):
        raise SessionError(f"damaged session: {what} is not an array reference")
    key = ref["$array"]
    if key not in arrays:
        raise SessionError(f"damaged session: array {key!r} ({what}) is missing from the sidecar file")
    a = arrays[key]
    if list(a.shape) != ref.get("shape") or a.dtype.name != ref.get("dtype"):
        raise SessionError(
            f"damaged session: array {key!r} ({what}) has shape {a.shape} {a.dtype}, "
            f"the document says {ref.get('shape')} {ref.get('dtype')}"
        )
    return a


def _req(d: Mapping[str, Any], key: str, types: type | tuple[type, ...], what: str) -> Any:
    if key not in d:
        raise SessionError(f"damaged session: {what} has no {key!r}")
    v = d[key]
    if not isinstance(v, types) or (isinstance(v, bool) and bool not in _as_tuple(types)):
        raise SessionError(f"damaged session: {what}.{key} has the wrong type ({type(v).__name__})")
    return v


def _opt(
    d: Mapping[str, Any], key: str, types: type | tuple[type, ...], what: str, default: Any = None
) -> Any:
    v = d.get(key)
    if v is None:
        return default
    if not isinstance(v, types) or (isinstance(v, bool) and bool not in _as_tuple(types)):
        raise SessionError(f"damaged session: {what}.{key} has the wrong type ({type(v).__name__})")
    return v


def _num(v: Any, what: str) -> float:
    """A JSON number as a finite float (SessionError otherwise, e.g. for 10**400)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SessionError(f"damaged session: {what} must be a number")
    try:
        f = float(v)
    except OverflowError:
        raise SessionError(f"damaged session: {what} is out of range") from None
    if not math.isfinite(f):
        raise SessionError(f"damaged session: {what} is not finite")
    return f


def _check_mask_values(m: np.ndarray, what: str) -> None:
    """A float mask must be finite and within [0, 1] (a NaN is not silently 0)."""
    if m.dtype.kind == "f":
        if not np.isfinite(m).all():
            raise SessionError(f"{what} holds NaN or infinite values")
        if m.size and (float(m.min()) < 0.0 or float(m.max()) > 1.0):
            raise SessionError(f"{what} has values outside [0, 1]")


def _as_tuple(t: type | tuple[type, ...]) -> tuple[type, ...]:
    return t if isinstance(t, tuple) else (t,)


def _check_plain(v: Any, what: str, depth: int = 0) -> Any:
    """Parameters and extras must be plain JSON values (no NaN: JSON has none)."""
    if depth > 32:
        raise SessionError(f"damaged session: {what} is nested too deeply")
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v
    if isinstance(v, list):
        return [_check_plain(x, what, depth + 1) for x in v]
    if isinstance(v, dict):
        return {str(k): _check_plain(x, what, depth + 1) for k, x in v.items()}
    raise SessionError(f"damaged session: {what} holds a {type(v).__name__}")


def _plain(v: Any, what: str) -> Any:
    """Convert parameters (numpy scalars, tuples) to JSON values for saving."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            raise ValueError(f"{what}: non-finite number {f} cannot be saved")
        return f
    if isinstance(v, (list, tuple)):
        return [_plain(x, what) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _plain(x, what) for k, x in v.items()}
    raise TypeError(f"{what}: a {type(v).__name__} is not plain data (numbers, strings, lists, dicts)")


@dataclass
class MaskLayer:
    """A painted mask (H, W), bool or float32 in [0, 1] (soft brush)."""

    name: str
    mask: np.ndarray
    visible: bool = True

    def to_json(self, arrays: dict[str, np.ndarray], key: str) -> dict[str, Any]:
        return {"name": self.name, "visible": bool(self.visible), "mask": _arr_ref(arrays, key, self.mask)}

    @classmethod
    def from_json(cls, d: Any, arrays: Mapping[str, np.ndarray]) -> MaskLayer:
        if not isinstance(d, dict):
            raise SessionError("damaged session: a mask entry is not an object")
        name = _req(d, "name", str, "mask")
        m = _get_arr(d.get("mask"), arrays, f"mask {name!r}")
        assert m is not None
        if m.ndim != 2:
            raise SessionError(f"damaged session: mask {name!r} is not 2-D")
        _check_mask_values(m, f"mask {name!r}")
        return cls(name=name, mask=m, visible=bool(_opt(d, "visible", bool, "mask", True)))


@dataclass
class ClonePlacement:
    """A seamless clone: the source (an opened image id/path), its region mask in source
    coordinates, the offset (dy, dx) where it lands in the destination, the guidance mode
    (``import``, ``mixed``, ``average``, ``paste``, ``replace``) and any extra parameters."""

    source_id: str
    mask: np.ndarray
    offset: tuple[int, int]
    mode: str = "import"
    source_path: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self, arrays: dict[str, np.ndarray], key: str) -> dict[str, Any]:
        if self.mode not in CLONE_MODES:
            raise ValueError(f"clone mode must be one of {CLONE_MODES}, got {self.mode!r}")
        return {
            "source_id": self.source_id,
            "source_path": self.source_path,
            "offset": [int(self.offset[0]), int(self.offset[1])],
            "mode": self.mode,
            "params": _plain(self.params, "clone params"),
            "mask": _arr_ref(arrays, key, self.mask),
        }

    @classmethod
    def from_json(cls, d: Any, arrays: Mapping[str, np.ndarray]) -> ClonePlacement:
        if not isinstance(d, dict):
            raise SessionError("damaged session: a clone entry is not an object")
        off = _req(d, "offset", list, "clone")
        if len(off) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in off):
            raise SessionError("damaged session: clone offset must be two integers")
        mode = _req(d, "mode", str, "clone")
        if mode not in CLONE_MODES:
            raise SessionError(f"damaged session: unknown clone mode {mode!r}")
        m = _get_arr(d.get("mask"), arrays, "clone mask")
        assert m is not None
        if m.ndim != 2:
            raise SessionError("damaged session: clone mask is not 2-D")
        _check_mask_values(m, "the clone mask")
        return cls(
            source_id=_req(d, "source_id", str, "clone"),
            mask=m,
            offset=(off[0], off[1]),
            mode=mode,
            source_path=_opt(d, "source_path", str, "clone"),
            params=_check_plain(_opt(d, "params", dict, "clone", {}), "clone params"),
        )


@dataclass
class MethodChoice:
    """A chosen method and its parameters, e.g. ``("denoise", "tv", {"weight": 0.1}, σ, seed)``."""

    kind: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    sigma: float | None = None
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "params": _plain(self.params, f"{self.name} params"),
            "sigma": _plain(self.sigma, "sigma"),
            "seed": None if self.seed is None else int(self.seed),
        }

    @classmethod
    def from_json(cls, d: Any) -> MethodChoice:
        if not isinstance(d, dict):
            raise SessionError("damaged session: a method entry is not an object")
        sigma = _opt(d, "sigma", (int, float), "method")
        return cls(
            kind=_req(d, "kind", str, "method"),
            name=_req(d, "name", str, "method"),
            params=_check_plain(_opt(d, "params", dict, "method", {}), "method params"),
            sigma=None if sigma is None else _num(sigma, "method sigma"),
            seed=_opt(d, "seed", int, "method"),
        )


def _stack(arrays: list[np.ndarray] | None) -> np.ndarray | None:
    if arrays is None or len(arrays) == 0:
        return None
    return np.stack([np.asarray(x) for x in arrays])


def sample_result_to_json(r: SampleResult, arrays: dict[str, np.ndarray], key: str) -> dict[str, Any]:
    """Every field of a :class:`SampleResult`: numbers and text in the JSON, arrays (the
    samples stacked (K, H, W[, C]), mean, std, the log rows (T, 3), σ per sample (T, K),
    the frames stacked with their iteration numbers, the degraded image) in the sidecar."""
    log = np.asarray([[float(v) for v in row] for row in r.log], dtype=np.float64).reshape(-1, 3)
    sig = np.asarray(r.sigma_log)
    if sig.dtype.name not in ("float32", "float64"):
        sig = sig.astype(np.float64)
    return {
        "method": r.method,
        "params": _plain(r.params, "sampler params"),
        "seed": None if r.seed is None else int(r.seed),
        "iterations": int(r.iterations),
        "converged": bool(r.converged),
        "message": str(r.message),
        "seconds": _plain(float(r.seconds), "sampler seconds"),
        "consistency": None if r.consistency is None else _plain(float(r.consistency), "consistency"),
        "samples": _arr_ref(arrays, key + "/samples", _stack(r.samples)),
        "mean": _arr_ref(arrays, key + "/mean", r.mean),
        "std": _arr_ref(arrays, key + "/std", r.std),
        "log": _arr_ref(arrays, key + "/log", log),
        "sigma_log": _arr_ref(arrays, key + "/sigma_log", sig),
        "frame_steps": [int(t) for t, _ in r.frames],
        "frames": _arr_ref(arrays, key + "/frames", _stack([f for _, f in r.frames])),
        "degraded": _arr_ref(arrays, key + "/degraded", r.degraded),
    }


def sample_result_from_json(d: Any, arrays: Mapping[str, np.ndarray]) -> SampleResult:
    """The :class:`SampleResult` saved by :func:`sample_result_to_json` (SessionError when damaged)."""
    if not isinstance(d, dict):
        raise SessionError("damaged session: a sampler entry is not an object")
    samples = _get_arr(d.get("samples"), arrays, "sampler samples", optional=True)
    mean = _get_arr(d.get("mean"), arrays, "sampler mean")
    std = _get_arr(d.get("std"), arrays, "sampler std")
    log = _get_arr(d.get("log"), arrays, "sampler log")
    sig = _get_arr(d.get("sigma_log"), arrays, "sampler sigma_log")
    frames = _get_arr(d.get("frames"), arrays, "sampler frames", optional=True)
    degraded = _get_arr(d.get("degraded"), arrays, "sampler degraded image", optional=True)
    assert mean is not None and std is not None and log is not None and sig is not None
    for a, what in ((mean, "mean"), (std, "std"), (samples, "samples"), (frames, "frames"),
                    (degraded, "degraded image")):
        if a is not None and (a.dtype.kind != "f" or not np.isfinite(a).all()):
            raise SessionError(f"damaged session: the sampler {what} holds NaN or infinite values")
    if mean.ndim not in (2, 3) or std.shape != mean.shape:
        raise SessionError("damaged session: the sampler mean and std must be images of one shape")
    if samples is not None and samples.shape[1:] != mean.shape:
        raise SessionError("damaged session: the sampler samples do not have the mean's shape")
    if log.ndim != 2 or log.shape[1] != 3 or sig.ndim != 2 or sig.shape[0] != log.shape[0]:
        raise SessionError("damaged session: the sampler logs have the wrong shape")
    steps = _opt(d, "frame_steps", list, "sampler", [])
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in steps) or \
            len(steps) != (0 if frames is None else frames.shape[0]):
        raise SessionError("damaged session: the sampler frames do not match their iteration numbers")
    consistency = _opt(d, "consistency", (int, float), "sampler")
    return SampleResult(
        samples=[] if samples is None else list(samples),
        mean=mean,
        std=std,
        log=[(int(t), float(sv), float(h)) for t, sv, h in log.tolist()],
        sigma_log=sig,
        iterations=_opt(d, "iterations", int, "sampler", 0),
        converged=_opt(d, "converged", bool, "sampler", False),
        message=_opt(d, "message", str, "sampler", ""),
        frames=[] if frames is None else [(t, f) for t, f in zip(steps, frames, strict=True)],
        seconds=_num(_opt(d, "seconds", (int, float), "sampler", 0.0), "sampler seconds"),
        params=_check_plain(_opt(d, "params", dict, "sampler", {}), "sampler params"),
        consistency=None if consistency is None else _num(consistency, "sampler consistency"),
        degraded=degraded,
        method=_req(d, "method", str, "sampler"),
        seed=_opt(d, "seed", int, "sampler"),
    )


@dataclass
class Session:
    """Everything needed to reopen a piece of work.

    ``image`` is the working image (after applied edits), float32 (H, W[, C]); it may be
    None when the work is exactly the file at ``image_path``. ``image_sha256`` is the hash
    of that file when the session was saved. ``methods`` are the chosen methods and
    parameters (one per tool/panel), ``history`` the applied operations in order, ``extra``
    any plain JSON the application wants back (view, selected tool, ...).
    """

    image_path: str | None = None
    image_sha256: str | None = None
    image: np.ndarray | None = None
    masks: list[MaskLayer] = field(default_factory=list)
    clones: list[ClonePlacement] = field(default_factory=list)
    methods: list[MethodChoice] = field(default_factory=list)
    history: list[MethodChoice] = field(default_factory=list)
    sampler_results: list[SampleResult] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    saved_at: str | None = None
    # set by load_session, not saved
    image_file: Path | None = field(default=None, compare=False)
    image_changed: bool = field(default=False, compare=False)
    image_missing: bool = field(default=False, compare=False)
    warnings: list[str] = field(default_factory=list, compare=False)

    @classmethod
    def for_image(cls, path: str | os.PathLike, **kw: Any) -> Session:
        """A new session on the image file ``path`` (its hash is recorded)."""
        p = Path(path)
        return cls(image_path=str(p.resolve()), image_sha256=file_sha256(p), **kw)

    def to_json(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The JSON document (without the sidecar name) and the arrays it refers to."""
        arrays: dict[str, np.ndarray] = {}
        if self.image is not None:
            im = np.asarray(self.image)
            if im.ndim not in (2, 3):
                raise ValueError(f"session image must be (H,W) or (H,W,C), got shape {im.shape}")
            if im.dtype.kind == "f" and not np.isfinite(im).all():
                raise ValueError("the working image holds NaN or infinite values (not storable)")
        names = [m.name for m in self.masks]
        if len(set(names)) != len(names):
            raise ValueError(f"mask names must be unique, got {names}")
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "session_id": self.session_id,
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "image_path": self.image_path,
            "image_sha256": self.image_sha256,
            "image": _arr_ref(arrays, "image", self.image),
            "masks": [m.to_json(arrays, f"mask/{i}") for i, m in enumerate(self.masks)],
            "clones": [c.to_json(arrays, f"clone/{i}") for i, c in enumerate(self.clones)],
            "methods": [m.to_json() for m in self.methods],
            "history": [m.to_json() for m in self.history],
            "sampler_results": [
                sample_result_to_json(r, arrays, f"sampler/{i}") for i, r in enumerate(self.sampler_results)
            ],
            "extra": _plain(self.extra, "extra"),
        }
        return doc, arrays

    @classmethod
    def from_json(cls, doc: Any, arrays: Mapping[str, np.ndarray]) -> Session:
        """Build a session from a checked document (see :func:`load_session`)."""
        if not isinstance(doc, dict):
            raise SessionError("damaged session: the document is not a JSON object")
        image = _get_arr(doc.get("image"), arrays, "image", optional=True)
        if image is not None and (image.ndim not in (2, 3) or image.dtype != np.float32):
            raise SessionError("damaged session: the working image must be float32 (H,W) or (H,W,C)")
        if image is not None and not np.isfinite(image).all():
            raise SessionError("the working image holds NaN or infinite values, which cannot be restored")
        masks = [MaskLayer.from_json(d, arrays) for d in _opt(doc, "masks", list, "session", [])]
        if image is not None:
            for m in masks:
                if m.mask.shape != image.shape[:2]:
                    raise SessionError(
                        f"damaged session: mask {m.name!r} is {m.mask.shape}, the image {image.shape[:2]}"
                    )
        return cls(
            image_path=_opt(doc, "image_path", str, "session"),
            image_sha256=_opt(doc, "image_sha256", str, "session"),
            image=image,
            masks=masks,
            clones=[ClonePlacement.from_json(d, arrays) for d in _opt(doc, "clones", list, "session", [])],
            methods=[MethodChoice.from_json(d) for d in _opt(doc, "methods", list, "session", [])],
            history=[MethodChoice.from_json(d) for d in _opt(doc, "history", list, "session", [])],
            sampler_results=[
                sample_result_from_json(d, arrays) for d in _opt(doc, "sampler_results", list, "session", [])
            ],
            extra=_check_plain(_opt(doc, "extra", dict, "session", {}), "extra"),
            session_id=_opt(doc, "session_id", str, "session") or uuid.uuid4().hex,
            saved_at=_opt(doc, "saved_at", str, "session"),
        )


# ----------------------------------------------------------------------------- files


def _open_regular(path: Path) -> tuple[Any, int]:
    """Open ``path`` for reading only if it is a regular file; returns (file, size).

    ``os.stat`` first (a FIFO would block the open, ``/dev/zero`` would never end), then an
    ``O_NONBLOCK`` open and ``fstat`` on the descriptor (the name may have been replaced in
    between). ``OSError`` for a missing or unreadable file; :class:`SessionError` naming
    what the path is otherwise."""
    from restorelab.io import file_kind

    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise SessionError(f"{path} is {file_kind(st.st_mode)}, not a regular file")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SessionError(f"{path} is {file_kind(st.st_mode)}, not a regular file")
        return os.fdopen(fd, "rb"), int(st.st_size)
    except BaseException:
        os.close(fd)
        raise


def _read_regular(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (SessionError otherwise)."""
    f, size = _open_regular(path)
    with f:
        if size > limit:
            raise SessionError(f"{what} {path.name} is too large ({size} bytes, at most {limit})")
        data = f.read(size + 1)  # a read of n bytes allocates n: the file's size, not the limit
    if len(data) > limit:
        raise SessionError(f"{what} {path.name} is too large (over {limit} bytes)")
    return data


def file_sha256(path: str | os.PathLike, *, max_bytes: int | None = None) -> str | None:
    """SHA-256 (hex) of a regular file's bytes, read in 1 MB blocks.

    Raises ``OSError`` when the file cannot be read and :class:`SessionError` when it is
    not a regular file (a FIFO or a device is never read). With ``max_bytes``, a larger
    file is not hashed and None is returned."""
    f, size = _open_regular(Path(path))
    with f:
        if max_bytes is not None and size > max_bytes:
            return None
        h = hashlib.sha256()
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_SIDECAR_RE = re.compile(r"\.[0-9a-f]{16}\.npz")


def _sidecars(path: Path) -> list[Path]:
    """The sidecars of the session ``path``: the entries of its folder named
    ``NAME.<16 hex>.npz``, matched as plain strings (a name is never a pattern)."""
    parent = path.parent if str(path.parent) else Path(".")
    head = path.name
    out = []
    try:
        with os.scandir(parent) as it:
            for e in it:
                n = e.name
                if n.startswith(head) and _SIDECAR_RE.fullmatch(n[len(head):]):
                    with contextlib.suppress(OSError):
                        if e.is_file(follow_symlinks=False):
                            out.append(parent / n)
    except OSError:
        return []
    return sorted(out)


def _lock_name(p: Path) -> Path:
    name = f".{p.name}.lock"
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        digest = hashlib.sha256(p.name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        name = f".{p.name.encode('utf-8', 'surrogateescape')[:200].decode('utf-8', 'ignore')}.{digest}.lock"
    return p.with_name(name)


#: longest wait (s) for another process's save of the same session
LOCK_TIMEOUT_S = 120.0


@contextlib.contextmanager
def _save_lock(p: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Any:
    """Hold an exclusive ``flock`` on ``.NAME.lock`` beside the session while saving.

    The holder removes the lock file before releasing it; a waiter that gets the lock on a
    file that was removed meanwhile (its inode is no longer the name's) tries again, so two
    savers never both believe they hold it."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    lock = _lock_name(p)
    deadline = time.monotonic() + timeout_s
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise OSError(errno.EBUSY, f"{p.name} is being saved by another process "
                                      f"(waited {timeout_s:g} s)", str(p)) from None
                    time.sleep(0.005)
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(lock))
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def save_session(path: str | os.PathLike, session: Session, *, compress: bool = True) -> Path:
    """Write ``session`` to ``path`` (JSON) and its sidecar ``path.<sha16>.npz``, atomically.

    Order: sidecar (temporary file + rename, name from its content) → JSON (temporary file
    + ``os.replace``) → removal of sidecars no longer referenced, under an exclusive lock on
    ``.NAME.lock`` (concurrent saves of one session run one after the other). Killed at any
    point, the previous session (or the new one) stays complete; a full disk or a read-only
    folder raises ``OSError`` and leaves the previous files as they were. Returns the JSON path.
    """
    p = Path(path)
    n = len(p.name.encode("utf-8", "surrogateescape"))
    if n > MAX_NAME_BYTES:
        raise OSError(errno.ENAMETOOLONG, f"session file name of {n} bytes is too long: at most "
                      f"{MAX_NAME_BYTES} bytes, so that its array file NAME.<hash>.npz fits in 255", str(p))
    doc, arrays = session.to_json()
    buf = io.BytesIO()
    for a in arrays.values():
        if a.size > MAX_ARRAY_ELEMENTS:
            raise ValueError(f"array of {a.size} elements is too large for a session file")
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    side = p.with_name(f"{p.name}.{digest[:16]}.npz")
    text = json.dumps({**doc, "sidecar": {"file": side.name, "sha256": digest, "bytes": len(data)}},
                      indent=1, allow_nan=False)
    check_free_space(p.parent if str(p.parent) else ".", len(data) + len(text))
    with _save_lock(p):
        cleanup_stale_temps(p, family=True)  # of this document and of its sidecars
        if not _same_file_content(side, data, digest):
            with atomic_write(side, "wb") as f:
                f.write(data)
        with atomic_write(p, "w") as f:
            f.write(text)
        for old in _sidecars(p):
            if old.name != side.name:
                with contextlib.suppress(OSError):
                    old.unlink()
    session.saved_at = doc["saved_at"]
    return p


def _same_file_content(side: Path, data: bytes, digest: str) -> bool:
    try:
        return (side.stat().st_size == len(data) and file_sha256(side) == digest)
    except (OSError, SessionError):
        return False


def sidecar_budget(image_shape: tuple[int, ...] | None) -> int:
    """Bytes the arrays of a session whose working image has ``image_shape`` may hold:
    :data:`SIDECAR_BASE_BYTES` plus :data:`SIDECAR_BYTES_PER_PIXEL` per pixel, at most
    :func:`restorelab.io.memory_budget`. Every array of a session is tied to its image
    (masks of its size, sampler crops of it), so a small image cannot declare gigabytes."""
    from restorelab.io import memory_budget

    px = 0 if not image_shape else int(image_shape[0]) * int(image_shape[1])
    return int(min(memory_budget(), SIDECAR_BASE_BYTES + SIDECAR_BYTES_PER_PIXEL * px))


def _array_refs(doc: Any, what: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Every ``{"$array": key, "shape": [...], "dtype": ...}`` of the document, checked
    (non-negative integer shapes, numeric dtypes, one declaration per key)."""
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}

    def walk(v: Any, depth: int) -> None:
        if depth > 40:
            raise SessionError(f"{what} is damaged: nested too deeply")
        if isinstance(v, dict):
            if "$array" in v:
                key, shape, dt = v.get("$array"), v.get("shape"), v.get("dtype")
                if (not isinstance(key, str) or not isinstance(shape, list) or len(shape) > 8
                        or not all(isinstance(k, int) and not isinstance(k, bool) and 0 <= k < 2**40
                                   for k in shape)
                        or not isinstance(dt, str) or dt not in _ARRAY_DTYPES):
                    raise SessionError(f"{what} is damaged: bad array declaration {str(v)[:80]}")
                ref = (tuple(shape), np.dtype(dt))
                if out.setdefault(key, ref) != ref:
                    raise SessionError(f"{what} is damaged: array {key!r} is declared twice")
                return
            for x in v.values():
                walk(x, depth + 1)
        elif isinstance(v, list):
            for x in v:
                walk(x, depth + 1)

    walk(doc, 0)
    return out


def _check_declared(refs: dict[str, tuple[tuple[int, ...], np.dtype]], what: str) -> int:
    """Check the declared arrays against the image they belong to, before any is read;
    returns their total size in bytes."""
    from restorelab.io import max_pixels_limit

    limit = max_pixels_limit()
    image = refs.get("image")
    image_shape = image[0] if image is not None else None
    if image_shape is not None:
        if len(image_shape) not in (2, 3) or (len(image_shape) == 3 and image_shape[2] not in (1, 2, 3, 4)):
            raise SessionError(f"{what} is damaged: the working image has shape {list(image_shape)}")
        if image_shape[0] * image_shape[1] > limit:
            raise SessionError(f"{what}: the working image of {image_shape[1]}x{image_shape[0]} pixels is "
                               f"over the limit of {limit:,} pixels (RESTORELAB_MAX_PIXELS)")
        for key, (shape, _dt) in refs.items():
            if key.startswith("mask/") and tuple(shape) != tuple(image_shape[:2]):
                raise SessionError(f"{what} is damaged: mask {key!r} is {list(shape)}, the image "
                                   f"{list(image_shape[:2])}")
    total = 0
    for key, (shape, dt) in refs.items():
        n = math.prod(shape)
        if n > MAX_ARRAY_ELEMENTS:
            raise SessionError(f"{what} is damaged: array {key!r} of shape {list(shape)} is too large")
        total += n * dt.itemsize
    budget = sidecar_budget(image_shape)
    if total > budget:
        raise SessionError(f"{what}: its arrays declare {total / 2**20:.0f} MiB, over the budget of "
                           f"{budget / 2**20:.0f} MiB for its image (RESTORELAB_MAX_MEMORY)")
    return total


class _SidecarMissing(SessionError):
    pass


def _read_npz(path: Path, expected_sha: str | None,
              refs: dict[str, tuple[tuple[int, ...], np.dtype]], total: int) -> dict[str, np.ndarray]:
    """Read the sidecar (a regular file, no pickle), checking each zip member's declared
    uncompressed size and ``.npy`` header against the document's declaration before
    decompressing it."""
    limit = total + (1 << 20) + 1024 * len(refs)
    try:
        data = _read_regular(path, limit, "the session's array file")
    except FileNotFoundError:
        raise _SidecarMissing(
            f"the session's array file {path.name} is missing (copy it beside the session)"
        ) from None
    except OSError as e:
        raise SessionError(f"cannot read the session's array file {path.name}: {e.strerror or e}") from None
    if expected_sha is not None and hashlib.sha256(data).hexdigest() != expected_sha:
        raise SessionError(f"the session's array file {path.name} is corrupt (checksum mismatch)")
    out: dict[str, np.ndarray] = {}
    bad = f"the session's array file {path.name}"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            if len(infos) > len(refs):
                raise SessionError(f"{bad} holds arrays the document does not declare")
            for info in infos:
                key = info.filename[:-4]
                if not info.filename.endswith(".npy") or key not in refs or key in out:
                    raise SessionError(f"{bad} holds an unexpected member")
                shape_d, dtype_d = refs[key]
                nbytes = math.prod(shape_d) * dtype_d.itemsize
                if not nbytes <= info.file_size <= nbytes + 65536:
                    raise SessionError(f"{bad} is corrupt (array {key!r} declares {info.file_size} bytes, "
                                       f"the document {nbytes})")
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version in ((2, 0), (3, 0)):
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise ValueError(f"unsupported .npy version {version}")
                    if tuple(shape) != shape_d or dtype != dtype_d:
                        raise SessionError(f"{bad} is corrupt (array {key!r} is {shape} {dtype}, the "
                                           f"document says {list(shape_d)} {dtype_d})")
                    raw = f.read(nbytes)
                    if len(raw) != nbytes:
                        raise SessionError(f"{bad} is truncated")
                    a = np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")
                    out[key] = np.array(a)  # own, writable copy
    except SessionError:
        raise
    except (Exception, MemoryError) as e:  # zipfile, zlib, numpy's header parser (even tokenize.TokenError)
        raise SessionError(f"{bad} is corrupt ({type(e).__name__})") from None
    return out


def _read_document(p: Path) -> dict[str, Any]:
    try:
        raw = _read_regular(p, MAX_JSON_BYTES, "the session file")
    except FileNotFoundError:
        raise SessionError(f"no session file at {p}") from None
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise SessionError(f"the session file name is too long ({len(p.name.encode())} bytes; "
                               "file systems allow 255)") from None
        raise SessionError(f"cannot read {p}: {e.strerror or e}") from None
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise SessionError(
            f"{p.name} is damaged or not a session file (invalid JSON: {_first_line(e)})"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SessionError(f"{p.name} is not a restorelab session file")
    ver = doc.get("version")
    if not isinstance(ver, int) or isinstance(ver, bool) or ver < 1:
        raise SessionError(f"{p.name} is damaged: bad version {ver!r}")
    if ver > VERSION:
        raise SessionError(
            f"{p.name} was written by a newer restorelab (session version {ver}; this one reads up to "
            f"{VERSION}); update restorelab to open it"
        )
    return doc


def _load_arrays(p: Path, doc: dict[str, Any]) -> dict[str, np.ndarray]:
    refs = _array_refs(doc, p.name)
    total = _check_declared(refs, p.name)
    side = doc.get("sidecar")
    if side is None:
        if refs:
            raise SessionError(f"{p.name} is damaged: it declares arrays but names no array file")
        return {}
    if (not isinstance(side, dict) or not isinstance(side.get("file"), str)
            or not isinstance(side.get("sha256"), str)):
        raise SessionError(f"{p.name} is damaged: bad sidecar entry")
    name = side["file"]
    if Path(name).name != name or not name.endswith(".npz") or name in (".", "..") or "\x00" in name:
        raise SessionError(f"{p.name} is damaged: bad sidecar file name")
    return _read_npz(p.with_name(name), side["sha256"], refs, total)


def resolve_image_path(session_path: str | os.PathLike, image_path: str) -> Path:
    """The file a session's ``image_path`` names: an absolute path as it is, a relative one
    against the session's folder, where it must stay (SessionError for ``../`` or a link
    leading out of the folder)."""
    if "\x00" in image_path:
        raise SessionError("damaged session: the image path holds a NUL character")
    ip = Path(image_path)
    if ip.is_absolute():
        return ip
    folder = Path(os.path.abspath(Path(session_path).parent))
    target = folder / ip
    try:
        inside = Path(os.path.realpath(target)).is_relative_to(os.path.realpath(folder))
    except (OSError, ValueError):
        inside = False
    if not inside or ".." in ip.parts:
        raise SessionError(f"the image path {image_path!r} leads out of the session's folder; a relative "
                           "image path must name a file inside it")
    return target


def load_session(path: str | os.PathLike, *, check_image: bool = True) -> Session:
    """Read a session written by :func:`save_session` and validate it (:func:`validate_session`).

    Raises :class:`SessionError` (one clear sentence) for a file that is not a session, a
    newer version, damaged JSON, a missing or corrupt sidecar, a path that is not a regular
    file or leaves the session's folder, arrays over the budget, NaN pixels or parameters
    out of their declared ranges (see the module docstring). When the source image file
    changed since the save (SHA-256 differs) or is gone, the session still loads, with
    ``image_changed`` / ``image_missing`` set and a message in ``warnings``.
    """
    p = Path(path)
    for attempt in range(5):
        doc = _read_document(p)
        try:
            arrays = _load_arrays(p, doc)
            break
        except _SidecarMissing:
            # a concurrent save replaced the document and removed the array file it named:
            # the new document names a complete one
            if attempt == 4 or _read_document(p) == doc:
                raise SessionError(
                    f"the session's array file {doc['sidecar']['file']} is missing (copy it beside "
                    "the session)") from None
    try:
        s = Session.from_json(doc, arrays)
    except SessionError as e:
        raise SessionError(f"{p.name}: {e}") from None
    except RecursionError:
        raise SessionError(f"{p.name} is damaged: nested too deeply") from None
    try:
        validate_session(s)
    except SessionError as e:
        raise SessionError(f"{p.name}: {e}") from None
    if s.image_path:
        ip = resolve_image_path(p, s.image_path)
        s.image_file = ip
        if check_image:
            _check_image_file(s, ip)
    return s


def _check_image_file(s: Session, ip: Path) -> None:
    try:
        h = file_sha256(ip, max_bytes=MAX_HASH_BYTES)
    except SessionError as e:
        raise SessionError(f"the session's image path: {e}") from None
    except OSError:
        s.image_missing = True
        s.warnings.append(f"the image {s.image_path} is missing; the session's own pixels are used")
        return
    if h is None:
        s.warnings.append(f"the image {s.image_path} is over {MAX_HASH_BYTES >> 30} GiB; whether it "
                          "changed since the session was saved is not checked")
    elif s.image_sha256 and h != s.image_sha256:
        s.image_changed = True
        s.warnings.append(f"the image {s.image_path} changed since the session was saved")


# ----------------------------------------------------------------------------- validation
def _declared_params(kind: str, name: str) -> tuple[Any, ...] | None:
    """The declared parameters of the method ``name`` of the tool ``kind`` (None when this
    restorelab does not have it)."""
    if kind == "denoise":
        from restorelab import denoise

        try:
            return tuple(denoise.get_class(name).params)
        except KeyError:
            return None
    if kind in ("poisson", "edit"):
        from restorelab.edit import OPERATIONS

        decl = OPERATIONS.get(name)
        return None if decl is None else tuple(decl)
    if kind in ("sampler", "sample"):
        from restorelab.prior import INVERSE_PARAMS, SAMPLER_PARAMS
        from restorelab.prior.operators import TASK_PARAMS

        if name == "sample":
            return tuple(SAMPLER_PARAMS)
        if name == "inpaint":
            return tuple(INVERSE_PARAMS)
        if name in TASK_PARAMS:
            return tuple(INVERSE_PARAMS) + tuple(TASK_PARAMS[name])
    return None


def _strict_kind(p: Any, v: Any) -> bool:
    """Whether the JSON value ``v`` has the declared kind of ``p`` (no conversions: a
    string is not a number, a number is not a flag)."""
    if v is None:
        return True
    if p.kind is bool:
        return isinstance(v, bool)
    if isinstance(v, bool):
        return False
    if p.kind is int:
        return isinstance(v, int) or (isinstance(v, float) and v.is_integer())
    if p.kind is float:
        return isinstance(v, (int, float))
    return isinstance(v, str)


def _check_params(decl: tuple[Any, ...], values: Mapping[str, Any], sigma: float | None, what: str) -> None:
    from restorelab.params import ParamError, resolve_params

    byname = {p.name: p for p in decl}
    for k, v in values.items():
        if k in byname and not _strict_kind(byname[k], v):
            raise SessionError(f"{what}: parameter {k!r} expects {byname[k].kind.__name__}, got {v!r}"[:300])
    try:
        resolve_params(decl, values, sigma)
    except (ParamError, OverflowError) as e:
        raise SessionError(f"{what}: {e}"[:300]) from None


def _check_seed(seed: Any, what: str) -> None:
    if seed is None:
        return
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < SEED_LIMIT:
        raise SessionError(f"{what}: seed {str(seed)[:40]} is out of range [0, 2^63)")


def validate_session(s: Session) -> None:
    """Check everything an application restores from ``s``, so that it can refuse a
    session before replacing its document.

    Each method choice (``methods`` and ``history``) of a known tool and method is checked
    against that method's declared :class:`~restorelab.params.Param` (unknown names, wrong
    types, values out of range: :class:`SessionError` naming the parameter and its range),
    σ against :func:`restorelab.params.check_sigma`, seeds against [0, 2^63); clone
    placements against the clone operation's declared parameters and offsets within
    ±:data:`MAX_OFFSET`; sampler results' seeds and crop origins. Methods this restorelab
    does not have are left to the application (it says they are not available).
    """
    from restorelab.params import check_sigma

    for group, choices in (("method", s.methods), ("history entry", s.history)):
        for m in choices:
            what = f"{group} {m.kind}/{m.name}"[:120]
            if m.sigma is not None:
                try:
                    check_sigma(m.sigma)
                except ValueError as e:
                    raise SessionError(f"{what}: {e}") from None
            _check_seed(m.seed, what)
            decl = _declared_params(m.kind, m.name)
            if decl is not None:
                _check_params(decl, m.params, m.sigma, what)
    for c in s.clones:
        if not all(abs(v) <= MAX_OFFSET for v in c.offset):
            raise SessionError(f"clone offset {c.offset} is out of range (at most {MAX_OFFSET} pixels)")
        decl = _declared_params("edit", "clone")
        if decl is not None:
            _check_params(tuple(d for d in decl if d.name != "mode"), c.params, None, "clone placement")
    for r in s.sampler_results:
        _check_seed(r.seed, "sampler result")
        _check_seed(r.params.get("seed"), "sampler result")
        origin = r.params.get("origin")
        if origin is not None and not (
                isinstance(origin, list) and len(origin) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_OFFSET
                        for v in origin)):
            raise SessionError(f"sampler result: bad crop origin {str(origin)[:40]}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:120]


# ----------------------------------------------------------------------------- autosave
def default_autosave_dir() -> Path:
    """``$RESTORELAB_AUTOSAVE_DIR``, else ``$XDG_STATE_HOME/restorelab/autosave``
    (``~/.local/state/restorelab/autosave``)."""
    env = os.environ.get("RESTORELAB_AUTOSAVE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "restorelab" / "autosave"


def autosave_disabled() -> bool:
    """True when ``RESTORELAB_NO_AUTOSAVE`` is set to a true value."""
    return os.environ.get("RESTORELAB_NO_AUTOSAVE", "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class RecoverableSession:
    """An autosave left by a run that did not exit cleanly."""

    path: Path
    saved_at: str | None
    image_path: str | None
    pid: int | None
    mtime: float

    def load(self) -> Session:
        return load_session(self.path)


class Autosaver:
    """Autosave a session into ``directory`` every ``interval_s`` seconds and on demand.

    One file per running process and session: ``autosave-<pid>-<session_id>.rlsession``.
    Call :meth:`maybe_save` often (e.g. on each edit, ``force=True`` after a completed job);
    it saves only when the interval has passed. :meth:`recover` lists the autosaves of
    processes that are no longer running (a crash), newest first; :meth:`clear` removes
    this process's autosaves (on a clean exit or after a manual save).
    """

    def __init__(self, directory: str | os.PathLike | None = None, interval_s: float = 180.0) -> None:
        self.directory = Path(directory) if directory is not None else default_autosave_dir()
        self.interval_s = float(interval_s)
        self._last: dict[str, float] = {}
        self.last_error: str | None = None

    @property
    def enabled(self) -> bool:
        return not autosave_disabled()

    def path_for(self, session: Session) -> Path:
        return self.directory / f"autosave-{os.getpid()}-{session.session_id}{SUFFIX}"

    def maybe_save(self, session: Session, *, force: bool = False) -> Path | None:
        """Save if ``interval_s`` passed since the last save of this session (or ``force``).

        Returns the path written, or None (not due, disabled, or the save failed: the
        error is kept in ``last_error`` — autosave never raises into the application).
        """
        if not self.enabled:
            return None
        now = time.monotonic()
        last = self._last.get(session.session_id)
        if not force and last is not None and now - last < self.interval_s:
            return None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            out = save_session(self.path_for(session), session, compress=False)
        except (OSError, ValueError, TypeError) as e:
            self.last_error = f"autosave failed: {e}"
            return None
        self._last[session.session_id] = now
        self.last_error = None
        return out

    def recover(self) -> list[RecoverableSession]:
        """Autosaves left by processes that are no longer running, newest first."""
        if not self.enabled or not self.directory.is_dir():
            return []
        found = []
        for f in self.directory.glob(f"autosave-*{SUFFIX}"):
            parts = f.name[len("autosave-"):].split("-", 1)
            pid = int(parts[0]) if parts[0].isdigit() else None
            if pid is not None and (pid == os.getpid() or pid_alive(pid)):
                continue
            try:
                doc = json.loads(_read_regular(f, MAX_JSON_BYTES, "the autosave").decode("utf-8"))
                saved, image = doc.get("saved_at"), doc.get("image_path")
                mtime = f.stat().st_mtime
            except (OSError, ValueError, AttributeError, RecursionError):  # SessionError is a ValueError
                continue
            found.append(RecoverableSession(f, saved if isinstance(saved, str) else None,
                                            image if isinstance(image, str) else None, pid, mtime))
        found.sort(key=lambda r: r.mtime, reverse=True)
        return found

    def discard(self, rec: RecoverableSession | Path) -> None:
        """Delete one autosave (after it was recovered or declined)."""
        _remove_session_files(rec.path if isinstance(rec, RecoverableSession) else Path(rec))

    def clear(self) -> None:
        """Remove this process's autosaves."""
        if not self.directory.is_dir():
            return
        for f in self.directory.glob(f"autosave-{os.getpid()}-*{SUFFIX}"):
            _remove_session_files(f)
        self._last.clear()


def _remove_session_files(p: Path) -> None:
    for side in _sidecars(p):
        with contextlib.suppress(OSError):
            side.unlink()
    with contextlib.suppress(OSError):
        p.unlink()
    cleanup_stale_temps(p, family=True)


