"""Session files: save and reopen a working session, without pickle.

A session is a JSON document (``format: "restorelab-session"``, ``version: 1``) plus one
sidecar ``.npz`` holding every array (masks, clone masks, the working image, sampler
samples/mean/std), written with ``numpy.savez`` on numeric arrays only and read back with
``allow_pickle=False``. The JSON names the sidecar and its SHA-256::

    photo.rlsession                         the JSON document
    photo.rlsession.<sha16>.npz             its arrays (content-addressed)

Saving is atomic and crash-safe: the sidecar is written first under a new name derived from
its content, then the JSON replaces the old one with :func:`os.replace`, then sidecars no
longer referenced are removed. A process killed at any point leaves either the old session
or the new one, both complete. Reading checks everything and raises :class:`SessionError`
with one clear sentence for a newer version, damaged JSON, a missing or corrupt sidecar;
a changed or missing source image is *not* an error: ``Session.image_changed`` /
``Session.image_missing`` are set and a warning is added to ``Session.warnings``.

:class:`Autosaver` writes the current session into a folder every few minutes (and when
asked, e.g. after a completed job) and lists what a crashed run left behind.
``RESTORELAB_NO_AUTOSAVE=1`` turns it off (the tests set it).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import time
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from restorelab.safety import atomic_write, check_free_space, cleanup_stale_temps, pid_alive

__all__ = [
    "FORMAT",
    "VERSION",
    "SUFFIX",
    "SessionError",
    "MaskLayer",
    "ClonePlacement",
    "MethodChoice",
    "SamplerResult",
    "Session",
    "save_session",
    "load_session",
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
#: largest total of decompressed array bytes read from one sidecar (a zip bomb stops here)
MAX_SIDECAR_BYTES = 16 << 30
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


@dataclass
class SamplerResult:
    """Result of an implicit-prior sampler run: K samples (K, H, W[, C]), their mean and
    per-pixel standard deviation, and the σ_t / h_t log of the run(s)."""

    method: str
    samples: np.ndarray | None = None
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    sigma_log: list[float] = field(default_factory=list)
    h_log: list[float] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None

    def to_json(self, arrays: dict[str, np.ndarray], key: str) -> dict[str, Any]:
        return {
            "method": self.method,
            "params": _plain(self.params, "sampler params"),
            "seed": None if self.seed is None else int(self.seed),
            "sigma_log": [_plain(float(v), "sigma_log") for v in self.sigma_log],
            "h_log": [_plain(float(v), "h_log") for v in self.h_log],
            "samples": _arr_ref(arrays, key + "/samples", self.samples),
            "mean": _arr_ref(arrays, key + "/mean", self.mean),
            "std": _arr_ref(arrays, key + "/std", self.std),
        }

    @classmethod
    def from_json(cls, d: Any, arrays: Mapping[str, np.ndarray]) -> SamplerResult:
        if not isinstance(d, dict):
            raise SessionError("damaged session: a sampler entry is not an object")
        logs = {}
        for k in ("sigma_log", "h_log"):
            v = _opt(d, k, list, "sampler", [])
            logs[k] = [_num(x, f"sampler {k}") for x in v]
        return cls(
            method=_req(d, "method", str, "sampler"),
            samples=_get_arr(d.get("samples"), arrays, "sampler samples", optional=True),
            mean=_get_arr(d.get("mean"), arrays, "sampler mean", optional=True),
            std=_get_arr(d.get("std"), arrays, "sampler std", optional=True),
            sigma_log=logs["sigma_log"],
            h_log=logs["h_log"],
            params=_check_plain(_opt(d, "params", dict, "sampler", {}), "sampler params"),
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
    sampler_results: list[SamplerResult] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    saved_at: str | None = None
    # set by load_session, not saved
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
                s.to_json(arrays, f"sampler/{i}") for i, s in enumerate(self.sampler_results)
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
                SamplerResult.from_json(d, arrays) for d in _opt(doc, "sampler_results", list, "session", [])
            ],
            extra=_check_plain(_opt(doc, "extra", dict, "session", {}), "extra"),
            session_id=_opt(doc, "session_id", str, "session") or uuid.uuid4().hex,
            saved_at=_opt(doc, "saved_at", str, "session"),
        )


# ----------------------------------------------------------------------------- save / load
def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sidecars(path: Path) -> list[Path]:
    return [p for p in path.parent.glob(path.name + ".*.npz") if p.is_file()]


def save_session(path: str | os.PathLike, session: Session, *, compress: bool = True) -> Path:
    """Write ``session`` to ``path`` (JSON) and its sidecar ``path.<sha16>.npz``, atomically.

    Order: sidecar (temporary file + rename, name from its content) → JSON (temporary file
    + ``os.replace``) → removal of sidecars no longer referenced. Killed at any point, the
    previous session (or the new one) stays complete; a full disk or a read-only folder
    raises ``OSError`` and leaves the previous files as they were. Returns the JSON path.
    """
    p = Path(path)
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
    cleanup_stale_temps(p, family=True)  # of this document and of its sidecars
    if not (side.is_file() and side.stat().st_size == len(data) and file_sha256(side) == digest):
        with atomic_write(side, "wb") as f:
            f.write(data)
    with atomic_write(p, "w") as f:
        f.write(text)
    session.saved_at = doc["saved_at"]
    for old in _sidecars(p):
        if old.name != side.name:
            with contextlib.suppress(OSError):
                old.unlink()
    return p


def _read_npz(path: Path, expected_sha: str | None) -> dict[str, np.ndarray]:
    """Read the sidecar with checks before any large allocation (no pickle)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SessionError(
            f"the session's array file {path.name} is missing (copy it beside the session)"
        ) from None
    except OSError as e:
        raise SessionError(f"cannot read the session's array file {path.name}: {e.strerror or e}") from None
    if expected_sha is not None and hashlib.sha256(data).hexdigest() != expected_sha:
        raise SessionError(f"the session's array file {path.name} is corrupt (checksum mismatch)")
    out: dict[str, np.ndarray] = {}
    budget = MAX_SIDECAR_BYTES
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    raise SessionError(f"the session's array file {path.name} holds an unexpected member")
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version in ((2, 0), (3, 0)):
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise ValueError(f"unsupported .npy version {version}")
                    if dtype.hasobject or dtype.name not in _ARRAY_DTYPES:
                        raise SessionError(f"the session's array file {path.name} holds a {dtype} array")
                    if any(int(k) < 0 for k in shape):
                        raise SessionError(f"the session's array file {path.name} is corrupt (bad shape)")
                    n = math.prod(shape)
                    if n > MAX_ARRAY_ELEMENTS or n * dtype.itemsize > min(info.file_size, budget):
                        raise SessionError(f"the session's array file {path.name} is corrupt (bad size)")
                    budget -= n * dtype.itemsize
                    raw = f.read(n * dtype.itemsize)
                    if len(raw) != n * dtype.itemsize:
                        raise SessionError(f"the session's array file {path.name} is truncated")
                    a = np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")
                    out[info.filename[:-4]] = np.array(a)  # own, writable copy
    except SessionError:
        raise
    except (Exception, MemoryError) as e:  # zipfile, zlib, numpy's header parser (even tokenize.TokenError)
        raise SessionError(f"the session's array file {path.name} is corrupt ({type(e).__name__})") from None
    return out


def load_session(path: str | os.PathLike, *, check_image: bool = True) -> Session:
    """Read a session written by :func:`save_session`.

    Raises :class:`SessionError` (one clear sentence) for a file that is not a session, a
    newer version, damaged JSON, a missing or corrupt sidecar. When the source image file
    changed since the save (SHA-256 differs) or is gone, the session still loads, with
    ``image_changed`` / ``image_missing`` set and a message in ``warnings``.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_JSON_BYTES:
            raise SessionError(f"{p.name} is not a session file (too large: {size} bytes)")
        raw = p.read_bytes()
    except FileNotFoundError:
        raise SessionError(f"no session file at {p}") from None
    except IsADirectoryError:
        raise SessionError(f"{p} is a folder, not a session file") from None
    except OSError as e:
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
    side = doc.get("sidecar")
    arrays: dict[str, np.ndarray] = {}
    if side is not None:
        if (not isinstance(side, dict) or not isinstance(side.get("file"), str)
                or not isinstance(side.get("sha256"), str)):
            raise SessionError(f"{p.name} is damaged: bad sidecar entry")
        name = side["file"]
        if Path(name).name != name or not name.endswith(".npz"):
            raise SessionError(f"{p.name} is damaged: bad sidecar file name")
        arrays = _read_npz(p.with_name(name), side["sha256"])
    try:
        s = Session.from_json(doc, arrays)
    except SessionError as e:
        raise SessionError(f"{p.name}: {e}") from None
    except RecursionError:
        raise SessionError(f"{p.name} is damaged: nested too deeply") from None
    if check_image and s.image_path:
        ip = Path(s.image_path)
        if not ip.is_absolute():
            ip = p.parent / ip
        try:
            h = file_sha256(ip)
        except OSError:
            s.image_missing = True
            s.warnings.append(f"the image {s.image_path} is missing; the session's own pixels are used")
        else:
            if s.image_sha256 and h != s.image_sha256:
                s.image_changed = True
                s.warnings.append(f"the image {s.image_path} changed since the session was saved")
    return s


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
                doc = json.loads(f.read_text(encoding="utf-8"))
                saved, image = doc.get("saved_at"), doc.get("image_path")
                mtime = f.stat().st_mtime
            except (OSError, ValueError, AttributeError):
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


