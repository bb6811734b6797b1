"""Safety helpers shared by the core, the CLI and the GUI.

- :func:`atomic_write` (and :func:`atomic_write_bytes`, :func:`atomic_write_text`): the one
  writer of the project. Readers only ever see the old content or the complete new one
  (temporary file in the same folder, ``fsync``, ``os.replace`` or ``os.link``, ``fsync``
  of the folder); a full disk, a read-only folder or a process killed mid-write leaves the
  previous file untouched, and the temporary files of killed writers are removed by the
  next write (:func:`stale_temps`, :func:`cleanup_stale_temps`).
- :func:`check_free_space`: refuse a write early with a clear ``OSError(ENOSPC)``.
- :func:`is_oom`, :func:`oom_fallback_job`, :func:`fallback_job`,
  :func:`run_with_oom_fallback`: the one out-of-memory fallback (device, then tiles, then
  the CPU), for jobs (GUI, CLI) and plain functions (benchmarks).
- :func:`tiled_apply`: apply an image-to-image function on overlapping tiles blended with
  a linear ramp (the usual way to bound the memory of a fully convolutional network).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np

from restorelab.jobs import Job, Progress

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "temp_name",
    "stale_temps",
    "check_free_space",
    "cleanup_stale_temps",
    "pid_alive",
    "OOM_KEY",
    "is_oom",
    "free_device_cache",
    "oom_fallback_job",
    "run_with_oom_fallback",
    "tiled_apply",
    "OOMFallbackFailed",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: longest file name (bytes) the usual file systems accept (ext4, xfs, btrfs, APFS, NTFS)
NAME_MAX = 255
_TMP_END = ".tmp"
_RAND_BYTES = 4  # 8 hex digits
_TEMP_RE = re.compile(r"^\.(?P<dest>.+)\.(?P<pid>[0-9]+)\.(?P<rand>[0-9a-f]{8})\.tmp$", re.DOTALL)
_LEGACY_TAG = ".rl-tmp-"  # .NAME.rl-tmp-<pid>-<random> (older writers); pid known, so removable too


def _temp_stem(name: str) -> str:
    """The destination name as it appears inside a temporary name: cut (on a character
    boundary) so that ``.STEM.<pid>.<8 hex>.tmp`` stays within :data:`NAME_MAX` bytes."""
    room = NAME_MAX - len(f"..{2**22}.{'0' * 2 * _RAND_BYTES}{_TMP_END}")
    b = name.encode("utf-8", "surrogateescape")
    if len(b) <= room:
        return name
    return b[:room].decode("utf-8", "ignore")


def temp_name(path: str | os.PathLike, pid: int | None = None, rand: str | None = None) -> Path:
    """The temporary file :func:`atomic_write` uses for ``path``:
    ``.{name}.{pid}.{8 hex digits}.tmp`` in the same folder (``name`` shortened so the
    temporary name fits in 255 bytes). The pid lets a later writer tell a temporary file
    of a killed process (removable) from one being written right now (kept)."""
    p = Path(path)
    pid = os.getpid() if pid is None else int(pid)
    rand = secrets.token_hex(_RAND_BYTES) if rand is None else rand
    return p.parent / f".{_temp_stem(p.name)}.{pid}.{rand}{_TMP_END}"


def _temp_owner(entry: str, stem: str, family: bool) -> int | None:
    """The writer pid of the temporary file named ``entry`` if it belongs to the destination
    whose temp stem is ``stem`` (or, with ``family``, to a name starting with it), else None.
    Plain string comparisons: a name is never a pattern."""
    m = _TEMP_RE.match(entry)
    if m is not None:
        dest = m.group("dest")
        if dest == stem or (family and dest.startswith(stem)):
            return int(m.group("pid"))
        return None
    head, tag, rest = entry.partition(_LEGACY_TAG)
    if tag and head.startswith("."):
        dest = head[1:]
        pid = rest.split("-", 1)[0]
        if pid.isdigit() and (dest == stem or (family and dest.startswith(stem))):
            return int(pid)
    return None


def stale_temps(path: str | os.PathLike, *, family: bool = False, include_live: bool = False) -> list[Path]:
    """Temporary files of :func:`atomic_write` beside ``path`` whose writer is gone.

    Parameters
    ----------
    path : path-like
        The destination file.
    family : bool
        Also those of files whose name starts with ``path``'s name (e.g. the sidecars
        ``NAME.<hash>.npz`` of a session document).
    include_live : bool
        Also those whose writer still runs (a write in progress, or this process's own);
        a check after the fact ("no temporary file left") wants them all.

    Returns
    -------
    list of Path
        Sorted; empty when the folder cannot be listed.
    """
    return _stale(path, family, include_live, fresh=True)


#: a folder's hidden names are listed again for clean-up after this many seconds, so that a
#: batch of thousands of saves into one folder does not list it thousands of times
_SCAN_TTL = 10.0
_scans: dict[str, tuple[float, list[str]]] = {}
_scans_lock = threading.Lock()


def _hidden_names(parent: Path, fresh: bool) -> list[str] | None:
    key = os.path.abspath(parent)
    now = time.monotonic()
    if not fresh:
        with _scans_lock:
            hit = _scans.get(key)
        if hit is not None and now - hit[0] < _SCAN_TTL:
            return hit[1]
    try:
        with os.scandir(parent) as it:
            names = [e.name for e in it if e.name.startswith(".")]
    except OSError:
        return None
    with _scans_lock:
        if len(_scans) > 256:
            _scans.clear()
        _scans[key] = (now, names)
    return names


def _stale(path: str | os.PathLike, family: bool, include_live: bool, fresh: bool) -> list[Path]:
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    stem = _temp_stem(p.name)
    found = []
    names = _hidden_names(parent, fresh)
    if names is None:
        return []
    me = os.getpid()
    for entry in names:
        pid = _temp_owner(entry, stem, family)
        if pid is None:
            continue
        if not include_live and (pid == me or pid_alive(pid)):
            continue
        found.append(parent / entry)
    return sorted(found)


def cleanup_stale_temps(path: str | os.PathLike, *, family: bool = False) -> int:
    """Remove the temporary files a killed writer left beside ``path`` (see
    :func:`stale_temps`); those of running processes, this one included, are kept.
    Returns how many were removed."""
    return _cleanup(path, family, fresh=True)


def _cleanup(path: str | os.PathLike, family: bool, fresh: bool) -> int:
    n = 0
    for t in _stale(path, family, False, fresh):
        with contextlib.suppress(OSError):
            t.unlink()
            n += 1
    return n


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(str(d), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_free_space(directory: str | os.PathLike, needed_bytes: int, *, margin: int = 16 << 20) -> None:
    """Raise ``OSError(ENOSPC)`` when ``directory`` has less than ``needed_bytes + margin`` free."""
    d = Path(directory)
    try:
        free = shutil.disk_usage(d).free
    except OSError:
        return  # cannot tell: let the write itself fail
    if free < needed_bytes + margin:
        raise OSError(
            errno.ENOSPC,
            f"not enough free disk space in {d}: {free / 2**20:.0f} MB free, "
            f"{(needed_bytes + margin) / 2**20:.0f} MB needed",
        )


def _create_temp(p: Path) -> tuple[int, Path]:
    """Create the temporary file exclusively with mode 0o666: the kernel applies the
    process umask (read nowhere, changed never), so the result has the permissions a plain
    ``open(path, "w")`` gives, without ``os.umask`` (which is process-wide, not thread-safe)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = temp_name(p)
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "cannot create a unique temporary file", str(p.parent))


def _exists_error(p: Path) -> FileExistsError:
    if p.is_symlink() and not p.exists():
        what = f"is a symbolic link to {os.readlink(p)}, which does not exist"
    elif p.is_dir():
        what = "is a folder"
    else:
        what = "exists"
    return FileExistsError(errno.EEXIST, f"{p} {what}; choose another name or allow overwriting", str(p))


def _publish(tmp: Path, p: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, p)
        return
    try:
        os.link(tmp, p)  # atomic and refuses an existing destination (a dangling link included)
    except FileExistsError:
        raise _exists_error(p) from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # a file system without hard links: check, then rename (a tiny race remains)
        if os.path.lexists(p):
            raise _exists_error(p) from None
        os.replace(tmp, p)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", *, overwrite: bool = True, fsync: bool = True
) -> Iterator[IO[Any]]:
    """Context manager yielding a file object whose content becomes ``path`` on success.

    This is the one writer of the project: images, logs, JSON indexes, sessions and their
    sidecars all go through it. The data goes to :func:`temp_name` ``(path)`` in the same
    folder (created with mode 0o666 less the umask); on a clean exit it is flushed,
    ``fsync``-ed and published: with ``overwrite`` by :func:`os.replace` (atomic on POSIX
    and Windows), without it by :func:`os.link`, which fails with ``FileExistsError`` when
    ``path`` exists, even if it appeared during the write. The folder is ``fsync``-ed too.

    On any error (ENOSPC, EACCES, an exception of the caller) the temporary file is removed
    and ``path`` keeps its previous content. A process killed mid-write leaves at most its
    temporary file, which the next write to ``path`` removes (:func:`cleanup_stale_temps`).

    Parameters
    ----------
    path : path-like
        Destination. A name longer than :data:`NAME_MAX` bytes raises ``OSError(ENAMETOOLONG)``.
    mode : str
        ``"wb"`` (bytes) or ``"w"`` (text, UTF-8, ``newline=""`` so ``csv`` controls line ends).
    overwrite : bool
        Replace an existing ``path`` (else ``FileExistsError``, nothing written).
    fsync : bool
        Flush to the disk before publishing (what makes the write survive a power cut).
    """
    if "w" not in mode or "+" in mode:
        raise ValueError(f"atomic_write needs a write mode ('w' or 'wb'), got {mode!r}")
    p = Path(path)
    if len(p.name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise OSError(errno.ENAMETOOLONG, f"file name of {len(p.name.encode('utf-8', 'surrogateescape'))} "
                      f"bytes is over the limit of {NAME_MAX}", str(p))
    if not overwrite and os.path.lexists(p):
        raise _exists_error(p)
    parent = p.parent if str(p.parent) else Path(".")
    _cleanup(p, False, fresh=False)
    fd, tmp = _create_temp(p)
    ok = False
    try:
        f = os.fdopen(fd, mode) if "b" in mode else os.fdopen(fd, mode, encoding="utf-8", newline="")
        with f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        _publish(tmp, p, overwrite)
        ok = True
        if fsync:
            _fsync_dir(parent)
    finally:
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True,
                       fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`); returns the path."""
    with atomic_write(path, "wb", overwrite=overwrite, fsync=fsync) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, overwrite: bool = True,
                      fsync: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`); returns the path."""
    with atomic_write(path, "w", overwrite=overwrite, fsync=fsync) as f:
        f.write(text)
    return Path(path)


# --------------------------------------------------------------------------- out of memory
#: key of ``Progress.data`` announcing a fallback (the GUI shows it in the status bar)
OOM_KEY = "oom_fallback"


class OOMFallbackFailed(RuntimeError):
    """Every fallback (tiled, CPU) ran out of memory too."""


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` means "out of memory", on any device.

    True for ``MemoryError`` (host), ``torch.OutOfMemoryError`` /
    ``torch.cuda.OutOfMemoryError`` (recognised by name, so torch need not be imported),
    and a ``RuntimeError`` whose text says "out of memory" or reports a failed cuDNN/cuBLAS
    allocation (older torch, MPS). Any other error, a ``ValueError`` that happens to
    mention memory included, is not an out-of-memory error.
    """
    if isinstance(exc, MemoryError):
        return True
    if type(exc).__name__ in ("OutOfMemoryError", "CudaOutOfMemoryError"):
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc)
        return "out of memory" in text.lower() or "_STATUS_ALLOC_FAILED" in text
    return False



def free_device_cache() -> None:
    """Release torch's cached CUDA blocks (so a retry, or the CPU, gets the memory a failed
    attempt held); on the main thread, collect garbage first. A no-op without torch or CUDA.

    A worker thread never runs a full collection: it would finalise whatever cycles exist,
    Qt wrappers of the GUI thread among them, away from their thread, where their
    destructors wait on the GUI thread's locks while it waits for the GIL (a deadlock seen
    on the GUI's out-of-memory retry). The failed attempt's tensors are freed by reference
    counting once its frames are gone, which :func:`fallback_job` ensures."""
    import gc
    import sys

    if threading.current_thread() is threading.main_thread():
        gc.collect()
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort
        pass


def _retry_words(label: str) -> str:
    return {"tiles": "in tiles", "cpu": "on the CPU"}.get(label, f"on {label}")


def fallback_job(attempts: Sequence[tuple[str, Callable[[], Job[T]]]]) -> Job[T]:
    """Run the job of each ``(label, factory)`` in turn until one finishes without running
    out of memory (:func:`is_oom`); the result of the first that finishes is returned.

    Before each retry the device cache is freed (:func:`free_device_cache`) and a
    ``Progress(0, None, message=..., data={OOM_KEY: message})`` announces it, e.g.
    "out of memory (CUDA out of memory. Tried to allocate 2 GiB); retrying on the CPU".
    Errors that are not out-of-memory errors propagate unchanged; closing this job closes
    the attempt that is running. When every attempt runs out of memory,
    :class:`OOMFallbackFailed` says which were tried.

    The failed attempt's exception is not kept (its traceback holds the attempt's tensors):
    only its first line goes into the messages.
    """
    if not attempts:
        raise ValueError("fallback_job needs at least one attempt")
    last = ""
    for i, (label, factory) in enumerate(attempts):
        if i > 0:
            free_device_cache()
            msg = f"out of memory ({last}); retrying {_retry_words(label)}"
            yield Progress(0, None, message=msg, data={OOM_KEY: msg})
        try:
            return (yield from factory())
        except Exception as e:  # noqa: BLE001 - filtered right below
            if not is_oom(e):
                raise
            last = _short(e)
    free_device_cache()
    tried = ", ".join(_retry_words(lab) for lab, _ in attempts[1:]) or "no fallback"
    raise OOMFallbackFailed(f"out of memory even after retrying ({tried}): {last}; "
                            "try a smaller image or fewer samples")


def oom_fallback_job(
    make_job: Callable[[str], Job[T]],
    device: str = "auto",
    *,
    tiled: Callable[[], Job[T]] | None = None,
) -> Job[T]:
    """The job ``make_job(device)``, retried on the CPU (``make_job("cpu")``) when the
    device runs out of memory: the single device fallback of the GUI and the CLI.

    Parameters
    ----------
    make_job : callable
        ``make_job(device_name)`` builds the job (a generator of ``Progress``) on that
        device, e.g. ``lambda d: denoise.get(name, device=d).job(y, sigma)``; it is called
        again for the CPU, so it must not reuse objects that hold device memory.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. On the CPU there is nothing to
        fall back to: the job runs once and a ``MemoryError`` propagates.
    tiled : callable, optional
        A job tried between the device and the CPU (e.g. the same denoiser on tiles,
        :func:`tiled_apply`).

    Returns
    -------
    Job
        Yields the attempts' progress plus one ``Progress`` per fallback whose
        ``data[OOM_KEY]`` is the message; returns the result of the attempt that finished.
    """
    name = str(device or "auto").lower()
    if name == "auto":
        from restorelab.device import resolve_device

        name = str(resolve_device("auto"))
    if name == "cpu":
        return (yield from make_job("cpu"))
    attempts: list[tuple[str, Callable[[], Job[T]]]] = [(name, lambda: make_job(name))]
    if tiled is not None:
        attempts.append(("tiles", tiled))
    attempts.append(("cpu", lambda: make_job("cpu")))
    return (yield from fallback_job(attempts))


def run_with_oom_fallback(
    fn: Callable[..., T],
    *args: Any,
    tiled: Callable[..., T] | None = None,
    cpu: Callable[..., T] | None = None,
    on_message: Callable[[str], Any] | None = None,
    **kwargs: Any,
) -> T:
    """Call ``fn(*args, **kwargs)``; on out of memory ``tiled(...)``, then ``cpu(...)``:
    :func:`fallback_job` for plain functions (same messages, same errors).

    Each fallback message goes to ``on_message`` (default: this module's logger).
    """
    from restorelab.jobs import run_job

    def step(f: Callable[..., T]) -> Callable[[], Job[T]]:
        def job() -> Job[T]:
            yield from ()  # a job of no events
            return f(*args, **kwargs)

        return job

    attempts = [("", step(fn))]
    attempts += [(lab, step(f)) for lab, f in (("tiles", tiled), ("cpu", cpu)) if f is not None]

    say = on_message or (lambda m: log.warning("%s", m))

    def on(ev: Progress) -> None:
        if OOM_KEY in ev.data:
            say(ev.data[OOM_KEY])

    return run_job(fallback_job(attempts), on_progress=on)


def _short(e: BaseException | None) -> str:
    if e is None:
        return ""
    s = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return s[:160]


def tiled_apply(
    fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray, *, tile: int = 256, overlap: int = 32
) -> np.ndarray:
    """Apply ``fn`` to overlapping ``tile``×``tile`` windows of ``image`` (H, W[, C]) and blend.

    Windows overlap by ``overlap`` pixels; the outer quarter of each overlap is discarded
    and the rest merged with a separable linear ramp (normalised weights), so a local,
    translation-equivariant ``fn`` whose support is under ``overlap/4`` pixels gives exactly
    the full-image result, and a CNN gives no visible seams.
    """
    if tile < 8:
        raise ValueError(f"tile must be >= 8, got {tile}")
    overlap = int(max(0, min(overlap, tile // 2)))
    a = np.asarray(image)
    h, w = a.shape[:2]
    if h <= tile and w <= tile:
        return np.asarray(fn(a), dtype=np.float32)
    step = tile - overlap

    def starts(n: int) -> list[int]:
        if n <= tile:
            return [0]
        s = list(range(0, n - tile, step)) + [n - tile]
        return sorted(set(s))

    out = np.zeros(a.shape, dtype=np.float64)
    wsum = np.zeros((h, w) + (1,) * (a.ndim - 2), dtype=np.float64)
    for y0 in starts(h):
        for x0 in starts(w):
            th, tw = min(tile, h), min(tile, w)
            patch = a[y0 : y0 + th, x0 : x0 + tw]
            res = np.asarray(fn(patch), dtype=np.float64)
            ry = _ramp(th, overlap, y0 > 0, y0 + th < h)
            rx = _ramp(tw, overlap, x0 > 0, x0 + tw < w)
            wt = np.outer(ry, rx).reshape((th, tw) + (1,) * (a.ndim - 2))
            out[y0 : y0 + th, x0 : x0 + tw] += res * wt
            wsum[y0 : y0 + th, x0 : x0 + tw] += wt
    return (out / wsum).astype(np.float32)


def _ramp(n: int, overlap: int, left: bool, right: bool) -> np.ndarray:
    """Blending weights along one axis of a tile: 0 on the outer quarter of an overlap (where
    the tile's own border effects live), then a linear ramp to 1. Two neighbouring tiles'
    weights sum to a positive value everywhere, and the result is normalised by that sum."""
    r = np.ones(n)
    if overlap > 0:
        pad = overlap // 4
        width = max(1, overlap - 2 * pad)
        ramp = np.clip((np.arange(overlap) - pad + 0.5) / width, 0.0, 1.0)
        if left:
            r[:overlap] = ramp
        if right:
            r[n - overlap:] = np.minimum(r[n - overlap:], ramp[::-1])
    return r


def denoise_with_fallback(
    denoiser: Any,
    y: np.ndarray,
    sigma: float,
    *,
    tile: int = 256,
    overlap: int = 32,
    on_message: Callable[[str], Any] | None = None,
) -> np.ndarray:
    """Denoise with ``denoiser(y, sigma)``; on out of memory retry in tiles, then on the CPU.

    The CPU retry builds a copy of the denoiser with ``device="cpu"`` (same parameters),
    tiled too, so it also bounds host memory.
    """

    def full(img: np.ndarray) -> np.ndarray:
        return denoiser(img, sigma)

    def tiled(img: np.ndarray) -> np.ndarray:
        return tiled_apply(lambda t: denoiser(t, sigma), img, tile=tile, overlap=overlap)

    def on_cpu(img: np.ndarray) -> np.ndarray:
        d = type(denoiser)(device="cpu", **getattr(denoiser, "values", {}))
        return tiled_apply(lambda t: d(t, sigma), img, tile=tile, overlap=overlap)

    return run_with_oom_fallback(full, y, tiled=tiled, cpu=on_cpu, on_message=on_message)


__all__.append("denoise_with_fallback")
