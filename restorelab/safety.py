"""Safety helpers shared by the core, the CLI and the GUI.

- :func:`atomic_write` / :func:`atomic_write_bytes`: write a file so that readers only ever
  see the old content or the complete new content (temporary file in the same folder,
  ``fsync``, ``os.replace``, ``fsync`` of the folder). A full disk, a read-only folder or
  a process killed mid-write leaves the previous file untouched.
- :func:`check_free_space`: refuse a write early with a clear ``OSError(ENOSPC)``.
- :func:`run_with_oom_fallback`: run a (GPU) computation; on an out-of-memory error retry
  it tiled, then on the CPU, and report what happened in one message.
- :func:`tiled_apply`: apply an image-to-image function on overlapping tiles blended with
  a linear ramp (the usual way to bound the memory of a fully convolutional network).
"""

from __future__ import annotations

import contextlib
import errno
import glob
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "check_free_space",
    "cleanup_stale_temps",
    "is_out_of_memory",
    "run_with_oom_fallback",
    "tiled_apply",
    "OOMFallbackFailed",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

_TMP_TAG = ".rl-tmp-"


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}{_TMP_TAG}"


def cleanup_stale_temps(path: str | os.PathLike, *, family: bool = False) -> int:
    """Remove temporary files left beside ``path`` by a write that was killed.

    They are named ``.NAME.rl-tmp-<pid>-*`` (with ``family=True`` also those of files whose
    name starts with NAME, e.g. the sidecars ``NAME.<hash>.npz`` of a session); only those of
    processes that no longer run are removed. Returns how many were removed.
    """
    p = Path(path)
    n = 0
    pattern = f".{glob_escape(p.name)}*{_TMP_TAG}*" if family else glob_escape(_tmp_prefix(p)) + "*"
    try:
        entries = list(p.parent.glob(pattern))
    except OSError:
        return 0
    for e in entries:
        rest = e.name.split(_TMP_TAG, 1)[-1]
        pid_s = rest.split("-", 1)[0]
        if pid_s.isdigit() and int(pid_s) != os.getpid() and pid_alive(int(pid_s)):
            continue
        if pid_s.isdigit() and int(pid_s) == os.getpid():
            continue  # maybe a concurrent write of ours
        with contextlib.suppress(OSError):
            e.unlink()
            n += 1
    return n


def glob_escape(name: str) -> str:
    return glob.escape(name)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
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


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, fsync: bool = True) -> Iterator[IO[Any]]:
    """Context manager yielding a file object whose content replaces ``path`` on success.

    The data goes to a temporary file in the same folder; on a clean exit it is flushed,
    ``fsync``-ed and renamed over ``path`` with :func:`os.replace` (atomic on POSIX and
    Windows). On any error (ENOSPC, EACCES, an exception of the caller) the temporary file
    is removed and ``path`` keeps its previous content. A process killed mid-write leaves
    at most a hidden temporary file, removed by the next write (:func:`cleanup_stale_temps`).
    """
    if "w" not in mode:
        raise ValueError(f"atomic_write needs a write mode, got {mode!r}")
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    cleanup_stale_temps(p)
    fd, tmp = tempfile.mkstemp(dir=str(parent), prefix=f"{_tmp_prefix(p)}{os.getpid()}-")
    ok = False
    try:
        # keep the permissions a normal open() would give
        with contextlib.suppress(OSError):
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
        f = os.fdopen(fd, mode) if "b" in mode else os.fdopen(fd, mode, encoding="utf-8")
        with f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, p)
        ok = True
        if fsync:
            _fsync_dir(parent)
    finally:
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb", fsync=fsync) as f:
        f.write(data)


# --------------------------------------------------------------------------- out of memory
class OOMFallbackFailed(RuntimeError):
    """Every fallback (tiled, CPU) ran out of memory too."""


def is_out_of_memory(exc: BaseException) -> bool:
    """True for ``torch.cuda.OutOfMemoryError``, a ``RuntimeError`` mentioning "out of memory"
    (older torch, MPS, cuDNN) and ``MemoryError``."""
    if isinstance(exc, MemoryError):
        return True
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_cuda_cache() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # pragma: no cover - best effort
        pass


def run_with_oom_fallback(
    fn: Callable[..., T],
    *args: Any,
    tiled: Callable[..., T] | None = None,
    cpu: Callable[..., T] | None = None,
    on_message: Callable[[str], Any] | None = None,
    **kwargs: Any,
) -> T:
    """Run ``fn(*args, **kwargs)``; on out of memory retry ``tiled(...)``, then ``cpu(...)``.

    ``tiled`` and ``cpu`` take the same arguments as ``fn`` (for a denoiser see
    :func:`denoise_with_fallback`). Between attempts the CUDA cache is emptied. Each
    fallback is reported once through ``on_message`` (default: the ``logging`` warning
    of this module), e.g. "GPU out of memory; retrying in tiles". When every attempt runs
    out of memory, :class:`OOMFallbackFailed` is raised with the last error as cause.
    Errors that are not out-of-memory errors propagate unchanged.
    """
    say = on_message or (lambda m: log.warning("%s", m))
    attempts: list[tuple[str, Callable[..., T]]] = [("", fn)]
    if tiled is not None:
        attempts.append(("tiles", tiled))
    if cpu is not None:
        attempts.append(("cpu", cpu))
    last: BaseException | None = None
    for i, (label, f) in enumerate(attempts):
        if i > 0:
            _free_cuda_cache()
            where = "in tiles" if label == "tiles" else "on the CPU"
            say(f"out of memory ({_short(last)}); retrying {where}")
        try:
            return f(*args, **kwargs)
        except BaseException as e:  # noqa: B036 - filtered right below
            if not is_out_of_memory(e):
                raise
            last = e
    _free_cuda_cache()
    raise OOMFallbackFailed(
        f"out of memory even after the fallbacks ({', '.join(a for a, _ in attempts[1:]) or 'none'}): "
        f"{_short(last)}; try a smaller image or a tile size"
    ) from last


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
