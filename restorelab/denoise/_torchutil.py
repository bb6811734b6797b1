"""Private helpers shared by the torch denoisers (heat, TV, Perona–Malik).

Layout: numpy images are float32 (H, W, C); inside, torch tensors are (N, C, H, W).
Finite differences are the forward differences of Chambolle (2004) with Neumann boundary
conditions (the difference across the last row/column is zero); :func:`div` is exactly
minus the adjoint of :func:`grad`, so ``<grad u, p> = -<u, div p>``.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import torch

from restorelab.device import resolve_device

__all__ = [
    "to_tensor", "to_numpy", "grad", "div", "laplacian", "as_sigma_tensor", "torch_threads", "threads_for",
    "workspace", "Workspace",
]


def to_tensor(x: np.ndarray, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(H, W, C) or (H, W) numpy image → contiguous (1, C, H, W) tensor on ``device``.

    It may share memory with ``x`` (CPU, float32, one channel): treat it as read-only.
    """
    a = np.asarray(x)
    if a.ndim == 2:
        a = a[:, :, None]
    t = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))
    return t.unsqueeze(0).to(device=resolve_device(device), dtype=dtype).contiguous()


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) tensor → float32 (H, W, C) numpy array on the CPU."""
    return np.ascontiguousarray(t[0].detach().to("cpu", torch.float32).permute(1, 2, 0).numpy())


def grad(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences (∂_y u, ∂_x u) with Neumann boundary (zero on the last row/column)."""
    gy = torch.zeros_like(u)
    gx = torch.zeros_like(u)
    gy[..., :-1, :] = u[..., 1:, :] - u[..., :-1, :]
    gx[..., :, :-1] = u[..., :, 1:] - u[..., :, :-1]
    return gy, gx


def div(py: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
    """Discrete divergence, the negative adjoint of :func:`grad` (Chambolle 2004, eq. (2.2))."""
    d = torch.zeros_like(py)
    d[..., :-1, :] += py[..., :-1, :]
    d[..., 1:, :] -= py[..., :-1, :]
    d[..., :, :-1] += px[..., :, :-1]
    d[..., :, 1:] -= px[..., :, :-1]
    return d


def laplacian(u: torch.Tensor) -> torch.Tensor:
    """5-point Laplacian with Neumann boundary, ``div(grad u)`` (mass-conserving)."""
    return div(*grad(u))


def as_sigma_tensor(sigma: Any, n: int, like: torch.Tensor) -> torch.Tensor:
    """σ as an (N, 1, 1, 1) tensor (from a float or N values) on ``like``'s device."""
    s = torch.as_tensor(sigma, dtype=like.dtype, device=like.device).flatten()
    if s.numel() == 1:
        s = s.expand(n)
    if s.numel() != n:
        raise ValueError(f"sigma has {s.numel()} values for a batch of {n}")
    if not bool(torch.isfinite(s).all()) or bool((s < 0).any()):
        raise ValueError("sigma must be finite and >= 0")
    return s.reshape(n, 1, 1, 1)


#: CPU work on up to this many values runs on one thread: the per-op work is too small to
#: share, and on a busy machine a second (spinning) OpenMP thread slows everything down
ONE_THREAD_NUMEL = 1 << 21


class torch_threads:
    """Context manager capping torch's intra-op threads (restored on exit)."""

    def __init__(self, n: int | None) -> None:
        self.n = n
        self.old = torch.get_num_threads()

    def __enter__(self) -> torch_threads:
        if self.n is not None and 0 < self.n < self.old:
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc: Any) -> None:
        if torch.get_num_threads() != self.old:
            torch.set_num_threads(self.old)


def threads_for(t: torch.Tensor) -> torch_threads:
    """One thread for small CPU tensors (see :data:`ONE_THREAD_NUMEL`), else unchanged."""
    small = t.device.type == "cpu" and t.numel() <= ONE_THREAD_NUMEL
    return torch_threads(1 if small else None)


_WS = threading.local()


#: a workspace keeps the buffers of this many recent (shape, dtype, device) per name, so that
#: alternating image sizes (landscape / portrait photos of one set) do not reallocate
WORKSPACE_SHAPES = 2


class Workspace:
    """Scratch buffers of one solver run, reused between runs on small CPU images.

    Fresh multi-megabyte CPU tensors are page-faulted in on first touch, which costs as much
    as a few solver iterations, so each thread keeps one set of buffers per solver ``key``
    (per name, the :data:`WORKSPACE_SHAPES` most recently used shapes).
    A run takes the set with :func:`workspace` and hands it back with :meth:`release`
    (in a ``finally``); a second run while the set is taken (two interleaved generators)
    gets fresh buffers. Large images and GPU tensors (which have a caching allocator) always
    get fresh buffers. Never return a workspace buffer to a caller.
    """

    def __init__(self, key: str, cached: bool) -> None:
        self.key = key
        self.cached = cached
        self.buffers: dict[str, list[torch.Tensor]] = {}

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """An uninitialised buffer of ``shape`` with ``like``'s dtype and device."""
        shape = tuple(int(v) for v in shape)
        kept = self.buffers.setdefault(name, [])
        for i, t in enumerate(kept):
            if tuple(t.shape) == shape and t.dtype == like.dtype and t.device == like.device:
                if i:  # most recently used first
                    kept.insert(0, kept.pop(i))
                return t
        t = torch.empty(shape, dtype=like.dtype, device=like.device)
        if self.cached and like.device.type == "cpu" and math.prod(shape) <= ONE_THREAD_NUMEL:
            kept.insert(0, t)
            del kept[WORKSPACE_SHAPES:]
        return t

    def release(self) -> None:
        """Hand the buffers back to the thread's pool."""
        if self.cached:
            getattr(_WS, "taken", set()).discard(self.key)


def workspace(key: str) -> Workspace:
    """Take this thread's buffer set for solver ``key`` (a fresh one if it is in use)."""
    pools = getattr(_WS, "pools", None)
    if pools is None:
        pools = _WS.pools = {}
        _WS.taken = set()
    if key in _WS.taken:
        return Workspace(key, cached=False)
    _WS.taken.add(key)
    ws = pools.get(key)
    if ws is None:
        ws = pools[key] = Workspace(key, cached=True)
    return ws
