"""Seamless cloning (Pérez, Gangnet & Blake, "Poisson Image Editing", SIGGRAPH 2003; Di Martino,
Facciolo & Meinhardt-Llopis, IPOL 2016).

The source mask's pixel (i, j) lands on the destination pixel (i + dy, j + dx). Inside the
placed mask Ω the result solves Δf = div v with f = f* (the destination) on ∂Ω; the part of the
mask that falls outside the destination is clipped; the destination border is a free (Neumann)
boundary; pixels outside Ω are returned unchanged, bit for bit.
"""

from __future__ import annotations

import threading
import weakref
from concurrent import futures
from typing import Any

import numpy as np

from restorelab.edit._image import as_mask, check_image, merge_alpha, split_alpha, to_float
from restorelab.edit.guidance import CLONE_MODES, clone_guidance
from restorelab.edit.solvers import (
    CAPACITANCE_MAX_CHARGES,
    SOLVERS,
    MaskedPoisson,
    ProblemCache,
    channel_mean,
    divergence,
    solve_neumann_dct,
)

__all__ = ["CloneSession", "prepare", "seamless_clone"]


def _offset(offset: Any) -> tuple[int, int]:
    try:
        dy, dx = offset
        fy, fx = float(dy), float(dx)
    except (TypeError, ValueError):
        raise ValueError(f"offset must be a pair (dy, dx) of integers, got {offset!r}") from None
    if not (np.isfinite(fy) and np.isfinite(fx)) or fy != int(fy) or fx != int(fx):
        raise ValueError(f"offset must be a pair (dy, dx) of integers, got {offset!r}")
    return int(fy), int(fx)


class CloneSession:
    """A source and its mask prepared for repeated placement (the GUI's drag).

    The linear system depends only on the placed mask, which is the same for every offset that
    keeps the mask one pixel away from the destination's border. The first :meth:`place` builds
    and factorises the capacitance matrix of the mask (see :mod:`restorelab.edit.solvers`; a few
    clipped variants near the border are cached too); every later placement in import mode is
    one FFT Poisson solve of the mask's bounding box plus two m × m triangular solves (m = the
    mask's boundary length), all colour channels at once. Only the crop around the placed mask
    is read and solved; the new full-size image (a copy of the destination) is made in a worker
    thread meanwhile, and a float32 destination already checked for NaN/inf by an earlier
    placement (the same buffer, as in a drag) is not scanned again outside the crop.

    Safe to use from several threads (a GUI's preview worker and its UI thread): placements
    of one session run one at a time (a lock), and a placement's bits do not depend on the
    calls before it (the cached factorisations are built once, then only read), so the same
    ``place(dst, offset)`` always returns the same image. ``place(..., reuse=True)`` returns
    the image an earlier call already made for that offset instead of solving again (a
    commit after a preview).
    """

    def __init__(self, src: Any, mask: Any, mode: str = "import", solver: str = "auto",
                 _oneshot: bool = False) -> None:
        if mode not in CLONE_MODES:
            raise ValueError(f"unknown clone mode {mode!r}; use one of {', '.join(CLONE_MODES)}")
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; use one of {', '.join(SOLVERS)}")
        raw = check_image(src, "src")
        self.src: np.ndarray | None = None
        self._raw: np.ndarray | None = None
        if _oneshot:
            # one placement (seamless_clone): convert and check only the source pixels it reads
            self._raw = raw
        else:
            self.src = self._convert_src(raw)  # float32, a private copy
        self.mask = as_mask(mask, raw.shape[:2])
        self.mode = mode
        self.solver = solver
        rows = np.flatnonzero(self.mask.any(axis=1))
        cols = np.flatnonzero(self.mask.any(axis=0))
        self._bbox = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
        self._cache = ProblemCache(4)
        self._oneshot = _oneshot
        self._dst_seen: tuple | None = None
        self._out_boxes: dict[tuple, tuple] = {}  # out buffer → (dst buffer, box it changed)
        self._g_key: tuple | None = None
        self._g: np.ndarray | None = None
        self._lock = threading.Lock()
        #: the last new image place() returned: (weak reference to its dst, offset, image)
        self._last: tuple[weakref.ref, tuple[int, int], np.ndarray] | None = None

    # -- geometry --------------------------------------------------------------------------------
    def _placement(self, offset: Any, dst_shape: tuple[int, ...]) -> tuple[tuple[slice, slice], np.ndarray]:
        dy, dx = _offset(offset)
        hd, wd = int(dst_shape[0]), int(dst_shape[1])
        sy0, sy1, sx0, sx1 = self._bbox
        y0, y1 = max(sy0 + dy, 0), min(sy1 + dy, hd)
        x0, x1 = max(sx0 + dx, 0), min(sx1 + dx, wd)
        inside = y0 < y1 and x0 < x1
        pm = self.mask[y0 - dy : y1 - dy, x0 - dx : x1 - dx] if inside else np.zeros((0, 0), bool)
        if not pm.any():
            raise ValueError(
                f"offset {(dy, dx)} places the mask entirely outside the {hd}x{wd} destination"
            )
        r = np.flatnonzero(pm.any(axis=1))
        c = np.flatnonzero(pm.any(axis=0))
        ty0, ty1, tx0, tx1 = y0 + r[0], y0 + r[-1] + 1, x0 + c[0], x0 + c[-1] + 1
        cy0, cy1, cx0, cx1 = max(ty0 - 1, 0), min(ty1 + 1, hd), max(tx0 - 1, 0), min(tx1 + 1, wd)
        mask_c = np.zeros((cy1 - cy0, cx1 - cx0), dtype=bool)
        mask_c[ty0 - cy0 : ty1 - cy0, tx0 - cx0 : tx1 - cx0] = pm[ty0 - y0 : ty1 - y0, tx0 - x0 : tx1 - x0]
        return (slice(cy0, cy1), slice(cx0, cx1)), mask_c

    def mask_at(self, offset: Any, dst_shape: tuple[int, ...]) -> np.ndarray:
        """The destination pixels (bool, ``dst_shape[:2]``) that a placement at ``offset``
        changes: the source mask shifted by (dy, dx) and clipped to the destination."""
        (ys, xs), mask_c = self._placement(offset, dst_shape)
        out = np.zeros((int(dst_shape[0]), int(dst_shape[1])), dtype=bool)
        out[ys, xs] = mask_c
        return out

    def _src_crop(self, ys: slice, xs: slice, offset: tuple[int, int], channels: int) -> np.ndarray:
        dy, dx = offset
        base = self.src if self.src is not None else self._raw
        assert base is not None
        hs, ws = base.shape[:2]
        y0, y1, x0, x1 = ys.start - dy, ys.stop - dy, xs.start - dx, xs.stop - dx
        if 0 <= y0 and y1 <= hs and 0 <= x0 and x1 <= ws:
            g = base[y0:y1, x0:x1]  # a view: only read
        else:
            ry = np.clip(np.arange(ys.start, ys.stop) - dy, 0, hs - 1)
            rx = np.clip(np.arange(xs.start, xs.stop) - dx, 0, ws - 1)
            g = base[ry[:, None], rx[None, :]]
        if self.src is None:
            g = self._convert_src(g)
        if g.shape[2] != channels:
            if g.shape[2] == 1:
                g = np.repeat(g, channels, axis=2)
            else:
                raise ValueError(
                    f"the source has {g.shape[2]} colour channels but the destination {channels}; "
                    "convert the source to gray first"
                )
        return g

    @staticmethod
    def _convert_src(a: np.ndarray) -> np.ndarray:
        s, _ = to_float(a, "src")
        s, _alpha = split_alpha(s)
        return s[:, :, None] if s.ndim == 2 else s

    def _dst_float(self, dst: Any) -> np.ndarray:
        """``dst`` as a new float32 array. A float32 destination seen (and checked for NaN/inf)
        by an earlier placement of this session — the same buffer, as in a drag — is only
        copied: the placement checks the pixels it reads (the crop) itself."""
        d = check_image(dst, "dst")
        key = _buffer_key(d)
        if d.dtype == np.float32 and key == self._dst_seen:
            out = np.array(d, copy=True)
            return out[:, :, 0] if out.ndim == 3 and out.shape[2] == 1 else out
        out, _ = to_float(d, "dst")
        self._dst_seen = key
        return out

    @staticmethod
    def _dst_crop(d: np.ndarray, ys: slice, xs: slice) -> np.ndarray:
        """The destination's colour channels over the crop, float32 (h, w, C), checked."""
        c, _ = to_float(d[ys, xs], "dst")
        c, _alpha = split_alpha(c)
        return c[:, :, None] if c.ndim == 2 else c

    # -- solve -----------------------------------------------------------------------------------
    def place(
        self, dst: Any, offset: Any = (0, 0), out: np.ndarray | None = None, reuse: bool = False
    ) -> np.ndarray:
        """The seamless clone of the prepared source into ``dst`` at ``offset`` = (dy, dx):
        a new float32 image of ``dst``'s shape (alpha, if any, copied from ``dst``).

        ``out`` (optional, for dragging): a float32 array of the result's shape to write into
        and return instead of a new image, typically an earlier result. When it holds what this
        session's last ``place(dst, ..., out=out)`` into it wrote, for the same ``dst`` buffer
        (up to 4 such buffers are remembered, so two can alternate), only the box changed then
        and the box changed now are rewritten (a drag update then
        costs the crop's solve, whatever the image size); otherwise ``out`` is first filled
        with ``dst``. Modify neither ``dst`` nor ``out`` between such calls (or pass a fresh
        ``out``).

        ``reuse`` (for a commit after a preview; not with ``out``): when the session's last
        placement without ``out`` — made by any thread, one still running is waited for — was
        into this very ``dst`` object at this offset, return that image itself (the same
        array, no solve); otherwise place as usual. The session keeps a reference to that
        last image. The caller must have modified neither ``dst`` nor that image since: the
        answer is then the one a new placement would give, bit for bit."""
        off = _offset(offset)
        if reuse and out is not None:
            raise ValueError("reuse returns an image placed earlier; it cannot write into out")
        with self._lock:
            return self._place(dst, off, out, reuse)

    def _place(self, dst: Any, off: tuple[int, int], out: np.ndarray | None, reuse: bool) -> np.ndarray:
        if reuse and self._last is not None:
            ref, last_off, last = self._last
            if last_off == off and ref() is dst:
                return last
        d = check_image(dst, "dst")
        (ys, xs), mask_c = self._placement(off, d.shape)
        prev = None
        if out is not None:
            out = self._check_out(out, d)
            okey, dkey = _buffer_key(out), _buffer_key(d)
            state = self._out_boxes.pop(okey, None)  # dropped until this call completes
            if state is not None and state[0] == dkey:
                prev = state[1]
        # the new full-size image (dst converted and copied) is made in a worker thread while
        # this one solves on the crop: a drag costs max(copy, solve), not their sum
        fut = None if prev is not None else _copier().submit(self._dst_float, d)
        try:
            dc = self._dst_crop(d, ys, xs)
            x = None
            if self.mode != "paste":
                prob = self._cache.get(mask_c)
                if not (prob.singular and mask_c.shape == d.shape[:2]):
                    x = self._solve(prob, dc, ys, xs, off)
        except BaseException:
            if fut is not None:
                futures.wait([fut])
            raise
        if out is None:
            assert fut is not None
            full = fut.result()
        elif prev is None:
            assert fut is not None
            np.copyto(out, fut.result())
            full = out
        else:  # restore the box changed last time, from dst
            out[prev] = to_float(d[prev], "dst")[0]
            full = out
        color, alpha = split_alpha(full)
        gray = color.ndim == 2
        res = color[:, :, None] if gray else color
        if self.mode == "paste":
            g = self._src_crop(ys, xs, off, res.shape[2])
            res[ys, xs][mask_c] = g[mask_c]
        elif x is None:
            # no Dirichlet boundary: the whole destination is replaced; keep its mean
            g = self._src_crop(ys, xs, off, res.shape[2])
            div = divergence(*clone_guidance(g, dc.astype(np.float64), self.mode))
            new = solve_neumann_dct(div, channel_mean(dc))
            if out is None:
                res = new
            else:
                res[...] = new
        elif x.ndim == 3:  # a dense crop (valid on the mask only)
            # a full-shape mask: a broadcast one makes copyto's inner loop 3 long (3× slower)
            np.copyto(res[ys, xs], x, where=np.repeat(mask_c[:, :, None], x.shape[2], axis=2))
        else:
            res[ys, xs][mask_c] = x
        if out is not None:
            self._out_boxes[okey] = (dkey, (ys, xs))
            while len(self._out_boxes) > 4:  # a few buffers (the GUI may alternate two)
                self._out_boxes.pop(next(iter(self._out_boxes)))
            return out
        if gray:
            res = res[:, :, 0]
        result = merge_alpha(res, alpha)
        self._last = None
        if isinstance(dst, np.ndarray):
            self._last = (weakref.ref(dst), off, result)
        return result

    @staticmethod
    def _check_out(out: Any, d: np.ndarray) -> np.ndarray:
        shape = d.shape[:2] if d.ndim == 3 and d.shape[2] == 1 else d.shape
        if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != shape:
            got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
            raise ValueError(f"out must be a float32 array of shape {shape}, got {got}")
        if not out.flags.writeable:
            raise ValueError("out is read-only")
        if np.may_share_memory(out, d):
            raise ValueError("out must not share memory with dst")
        return out

    def _source(self, ys: slice, xs: slice, off: tuple[int, int], channels: int) -> np.ndarray:
        """The source over the destination crop, cached while it does not change (a drag that
        keeps the mask inside the destination sees the same source crop at every offset)."""
        key = (ys.start - off[0], xs.start - off[1], ys.stop - ys.start, xs.stop - xs.start, channels)
        if self._g_key != key:
            self._g = self._src_crop(ys, xs, off, channels)
            self._g_key = key
        return self._g

    def _solve(
        self, prob: MaskedPoisson, dc: np.ndarray, ys: slice, xs: slice, off: tuple[int, int]
    ) -> np.ndarray:
        """Solve the crop problem. Import and average guidance are gradients of known images,
        so f = φ + (harmonic correction): with the capacitance solver (a session's choice, its
        factorisation reused for every offset) that is one FFT solve per placement."""
        solver = self.solver
        if solver == "auto":
            if self._oneshot:
                solver = prob.choose("auto")
            elif prob.charges <= CAPACITANCE_MAX_CHARGES:
                solver = "capacitance"
            else:  # a very long boundary: factorise if that stays affordable, else CG
                solver = "direct" if prob.n <= 300_000 else "cg"
        g = self._source(ys, xs, off, dc.shape[2])
        prob.reuse = not self._oneshot
        if solver == "capacitance":
            # dense crop results (valid on the mask), no gather of the mask pixels; a drag
            # skips the refinement step: the charges stay within ~1e-5 (tests/edit)
            cap = prob.capacitance
            if self.mode == "mixed":
                # the guidance in float32 (differences and a magnitude test of float32 pixels:
                # half the time of float64); the solve itself accumulates in float64
                div = divergence(*clone_guidance(g, dc, self.mode))
                return cap.solve_div_crop(dc, div, refine=self._oneshot)
            # import / replace / average: v = ∇φ, f = φ + h with h harmonic, h = f* − φ on ∂Ω
            phi = g if self.mode in ("import", "replace") else 0.5 * (g + dc)
            gy, gx = cap.gamma
            field = cap.harmonic_crop(dc[gy, gx] - phi[gy, gx], refine=self._oneshot)
            field += phi
            return field
        if self.mode in ("import", "replace"):
            return prob.solve_potential(dc, g, solver)
        if self.mode == "average":
            return prob.solve_potential(dc, 0.5 * (g + dc), solver)
        div = divergence(*clone_guidance(g, dc, self.mode))
        return prob.solve_div(dc, div, solver, refine=self._oneshot)


def _buffer_key(a: np.ndarray) -> tuple:
    """Identifies an array's buffer and layout (not its contents)."""
    return (a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str)


_COPIER: futures.ThreadPoolExecutor | None = None
_COPIER_LOCK = threading.Lock()


def _copier() -> futures.ThreadPoolExecutor:
    """One worker thread that makes the output copies of the destination (numpy releases the
    GIL while copying)."""
    global _COPIER
    with _COPIER_LOCK:
        if _COPIER is None:
            _COPIER = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="restorelab-clone-copy")
        return _COPIER


def prepare(src: Any, mask: Any, mode: str = "import", solver: str = "auto") -> CloneSession:
    """Prepare ``src`` and its ``mask`` for repeated :meth:`CloneSession.place` calls."""
    return CloneSession(src, mask, mode=mode, solver=solver)


def seamless_clone(
    src: Any,
    dst: Any,
    mask: Any,
    offset: Any = (0, 0),
    mode: str = "import",
    solver: str = "auto",
) -> np.ndarray:
    """Seamless cloning (Pérez et al. 2003): the pixels of ``src`` selected by ``mask`` (non-zero,
    same height and width as ``src``) are blended into ``dst`` so that the source mask pixel
    (i, j) lands at (i + dy, j + dx), solving Δf = div v inside the placed mask with the
    destination as Dirichlet boundary (its border as a free boundary).

    ``mode``: ``import`` (v = ∇src), ``mixed`` (the larger of ∇src and ∇dst per pixel),
    ``average``, ``paste`` (plain copy) or ``replace`` (the IPOL name of ``import``).
    ``solver``: ``auto`` | ``capacitance`` | ``direct`` | ``cg`` | ``amg`` (see
    :mod:`restorelab.edit.solvers`; all are exact to far below 0.5/255).
    Returns a new float32 image with ``dst``'s shape; inputs are not modified.
    """
    # one-shot: "auto" lets MaskedPoisson.choose decide, the refinement step is kept
    sess = CloneSession(src, mask, mode=mode, solver=solver, _oneshot=True)
    return sess.place(dst, offset)
