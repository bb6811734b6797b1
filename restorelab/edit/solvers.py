"""Poisson solvers: Δf = div v on a mask (Dirichlet) or on the whole image (Neumann / periodic).

Discretisation (Pérez, Gangnet & Blake 2003, eq. 7; Di Martino, Facciolo & Meinhardt-Llopis,
"Poisson Image Editing", IPOL 2016, §3): the guidance field lives on the edges of the pixel
grid, ``vx[i, j]`` the wanted ``f[i, j+1] − f[i, j]`` and ``vy[i, j]`` the wanted
``f[i+1, j] − f[i, j]``. For a pixel p of the mask Ω with in-image 4-neighbours N_p::

    |N_p| f_p − Σ_{q ∈ N_p ∩ Ω} f_q = Σ_{q ∈ N_p \\ Ω} f*_q − (div v)_p

with ``(div v)_p = vx[i,j] − vx[i,j−1] + vy[i,j] − vy[i−1,j]`` (edges leaving the image
dropped). A neighbour outside the image simply does not exist: the image border is a free
(Neumann) boundary, the rest of ∂Ω a Dirichlet boundary taking the values f*. Pixels outside Ω
are never touched.

Solvers of the masked system (all exact; ``tests/edit`` checks them against a dense solve):

* ``"capacitance"`` — the capacitance-matrix method on the torus holding the mask's bounding
  box (see :class:`_Capacitance`): the FFT inverts the periodic Laplacian, and an m × m system
  on the m boundary pixels makes the boundary values exact. That system is solved by dense
  Cholesky when it is small (m ≤ :data:`HODLR_MIN_CHARGES`) or will serve many solves (a drag
  session, m ≤ :data:`CAPACITANCE_DENSE_MAX`), else by conjugate gradients preconditioned with a
  HODLR approximate inverse (:mod:`restorelab.edit._hodlr`), stopped at a relative residual of
  :data:`_KCG_TOL`. A guidance that is a gradient (import, average, contrast, colour change)
  needs ONE FFT Poisson solve of the bounding box, others two; so a drag update, with the
  factorisation cached, is one FFT solve.
* ``"direct"`` — SuperLU (``scipy.sparse.linalg.splu``) of the SPD matrix with the
  ``MMD_AT_PLUS_A`` ordering and no pivoting, cached per mask. Exact to rounding: the
  reference of the tests and of the benchmark, but its factorisation takes seconds at 10⁵
  unknowns and its triangular solves are too slow for dragging.
* ``"cg"`` — conjugate gradients on the mask pixels, preconditioned by the fast sine-transform
  (DST-I) Poisson solve on the mask's bounding box, stopped when the preconditioned residual
  (an estimate of the error) is below 1e-5 in max norm. No set-up, but tens of iterations.
* ``"amg"`` — ``pyamg`` Ruge–Stüben multigrid as a CG preconditioner (hierarchy cached).

Why the capacitance method: the matrix depends only on the mask, and its inverse on the mask
splits into a translation-invariant part (the FFT) and a part that lives on the boundary only
(m ≈ perimeter ≪ n unknowns). ``restorelab bench poisson`` times the solvers on the same scenes:
on this 2-core machine the capacitance solve is the fastest cold solve at every size tried and
the only one whose drag update stays under 30 ms; the sparse LU, DST-preconditioned CG and
multigrid (set-up plus several V-cycles per channel) are one to two orders of magnitude
slower. ``"auto"`` therefore picks ``"capacitance"`` while the mask has at most
:data:`CAPACITANCE_MAX_CHARGES` boundary pixels (the dense m × m matrix must fit in memory),
else ``"cg"``.

Why CG + HODLR for a one-shot solve (measured on the benchmark scene, 1024² destination, 25 %
ellipse, m = 1636 boundary pixels, one BLAS thread): the dense Cholesky factorisation of the
capacitance matrix took 24 ms (m³/3 flops), its triangular solves and refinement 5 ms more, the
whole clone ≈ 85 ms against 48 ms for ``cv2.seamlessClone``. The off-diagonal blocks of the
capacitance matrix (the lattice Green's function between boundary arcs) have low numerical rank,
so a HODLR approximate inverse of rank 32 (≈ 10 ms to build, O(m² k)) makes CG converge in 4–5
iterations of one dense product each (≈ 9 ms); with the matrix gathered by its upper half, the
constant folded into the FFT's zero frequency and the output copy overlapped with the solve,
the clone takes ≈ 40 ms. At 4000 × 3000 (m = 5644) the old block-Jacobi CG took 1.75 s, the
HODLR-preconditioned CG ≈ 0.5 s (4 iterations at rank 46). CG on the capacitance matrix with a
block-Jacobi preconditioner (blocks of 128–256 spatially close charges, with or without a
piecewise-constant coarse space) needs 25–30 iterations: slower than the factorisation. Using
two OpenBLAS threads for the factorisation made it 40× slower while the other core was busy
(threads spin), and threading the gather of K lost time under load: everything runs on one
thread except the FFT's two workers and the copy of the destination.
Whole-image solvers (the Fourier method of the IPOL paper, §3.2): :func:`solve_neumann_dct`
(DCT-II diagonalises the Neumann Laplacian exactly) and :func:`solve_periodic_fft` (the FFT
diagonalises the periodic one); both pin the free constant to a given mean.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
import scipy.fft as sfft
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from restorelab.edit._hodlr import HODLR

__all__ = [
    "SOLVERS",
    "CAPACITANCE_MAX_CHARGES",
    "CAPACITANCE_DENSE_MAX",
    "MaskedPoisson",
    "divergence",
    "known_sum",
    "solve_neumann_dct",
    "solve_periodic_fft",
    "solve_guided",
    "crop_box",
]

SOLVERS = ("auto", "capacitance", "direct", "cg", "amg")
#: above this many boundary charges "auto" uses CG instead of the capacitance matrix (its
#: matrix (float32, m² entries) must fit in memory)
CAPACITANCE_MAX_CHARGES = 12_000
#: above this many charges the capacitance system is solved by block-Jacobi CG (dense K
#: products, a few dozen iterations) instead of a dense Cholesky factorisation (m³/3 flops)
CAPACITANCE_DENSE_MAX = 5_000
#: up to this many charges a one-shot solve factorises K densely (Cholesky, m³/3 flops); above,
#: CG preconditioned by a HODLR approximate inverse (O(m² k)) is faster
HODLR_MIN_CHARGES = 1_000
_HODLR_LEAF = 384
_KROWS = 256
_HODLR_RANK = 0  # 0: chosen from m by _hodlr_rank


def _hodlr_rank(m: int) -> int:
    """Rank of the HODLR blocks: the numerical rank of the boundary kernel's off-diagonal
    blocks grows like log m; measured: 32 at m ≈ 1600 and 48 at m ≈ 5600 need 4 CG iterations."""
    return _HODLR_RANK or int(np.clip(8 * np.log2(m / 100), 24, 64))
_KCG_TOL = 1e-6
_KCG_MAXITER = 60
_WORKERS = 2
_CG_TOL = 1e-5
_CG_MAXITER = 400
#: precision of the FFT that spreads the boundary charges (see tests/edit: float32 keeps the
#: error far below 0.5/255 and halves the time of a drag update)
_CHARGE_DTYPE = np.float32


_T = TypeVar("_T")


def _once(obj: Any, attr: str, build: Callable[[], _T]) -> _T:
    """The lazily built attribute ``obj.<attr>`` (``None`` until built), built once even when
    several threads ask at the same time: double-checked under ``obj._lock`` (an RLock, so a
    builder may use other lazy attributes), and published by one assignment of the finished
    value, so a reader without the lock sees either ``None`` or the complete object."""
    value = getattr(obj, attr)
    if value is None:
        with obj._lock:
            value = getattr(obj, attr)
            if value is None:
                value = build()
                setattr(obj, attr, value)
    return value


def _channels(a: np.ndarray) -> np.ndarray:
    return a[:, :, None] if a.ndim == 2 else a


def divergence(vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
    """``div v`` on the pixel grid from edge fields ``vx`` (H, W−1, C) and ``vy`` (H−1, W, C):
    ``vx[i,j] − vx[i,j−1] + vy[i,j] − vy[i−1,j]`` with missing edges taken as zero."""
    h, w1 = vx.shape[:2]
    out = np.zeros((h, w1 + 1) + vx.shape[2:], dtype=np.result_type(vx, vy, np.float32))
    out[:, :-1] += vx
    out[:, 1:] -= vx
    out[:-1] += vy
    out[1:] -= vy
    return out


def known_sum(target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Σ of the 4-neighbours' values of ``target`` that lie outside ``mask`` (inside the array)."""
    f = target * (~mask)[..., None] if target.ndim == 3 else target * ~mask
    k = np.zeros_like(f)
    k[:, :-1] += f[:, 1:]
    k[:, 1:] += f[:, :-1]
    k[:-1] += f[1:]
    k[1:] += f[:-1]
    return k


def channel_mean(a: np.ndarray) -> np.ndarray:
    """Per-channel mean (C,) of an (H, W, C) array, fast (row sums first; ``mean(axis=(0, 1))``
    is 100× slower in numpy)."""
    h, w, c = a.shape
    return a.reshape(h, w * c).sum(axis=0).reshape(w, c).sum(axis=0, dtype=np.float64) / (h * w)


def crop_box(mask: np.ndarray) -> tuple[slice, slice]:
    """The bounding box of ``mask`` grown by one pixel, clipped to the array."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("mask is empty: select at least one pixel")
    h, w = mask.shape
    ys = slice(max(rows[0] - 1, 0), min(rows[-1] + 2, h))
    return ys, slice(max(cols[0] - 1, 0), min(cols[-1] + 2, w))


def _dst_eigenvalues(h: int, w: int) -> np.ndarray:
    ly = 2.0 - 2.0 * np.cos(np.pi * np.arange(1, h + 1) / (h + 1))
    lx = 2.0 - 2.0 * np.cos(np.pi * np.arange(1, w + 1) / (w + 1))
    return ly[:, None] + lx[None, :]


class MaskedPoisson:
    """The Dirichlet problem of the module docstring on the True pixels of a 2-D boolean
    array (a crop of the image: a mask pixel on the array's edge is taken to be on the image
    border). The matrix depends on the mask only; its factorisation / multigrid hierarchy are
    built on first use and kept, so repeated solves with new boundary values and guidance are
    cheap. Safe to share between threads: each lazily built part is built once, under a lock,
    and only read afterwards."""

    def __init__(self, mask: np.ndarray) -> None:
        m = np.asarray(mask, dtype=bool)
        if m.ndim != 2 or not m.any():
            raise ValueError("MaskedPoisson needs a non-empty 2-D mask")
        self.mask = m.copy()
        self.mask.setflags(write=False)
        self.shape = m.shape
        self._flat: np.ndarray | None = None
        self.n = int(np.count_nonzero(m))
        self._A: sp.csr_matrix | None = None
        self._lu = None
        self._ml = None
        self._lam: np.ndarray | None = None
        self._cap: _Capacitance | None = None
        self._charges: int | None = None
        self._lock = threading.RLock()
        #: set by callers that will solve many times with this mask (a clone session): the
        #: capacitance matrix is then factorised even when large
        self.reuse = False

    @property
    def flat(self) -> np.ndarray:
        """Flat indices of the mask pixels in the crop (computed on first use)."""
        return _once(self, "_flat", lambda: np.flatnonzero(self.mask))

    # -- the matrix ------------------------------------------------------------------------------
    @property
    def singular(self) -> bool:
        """True when no pixel of the array is outside the mask (no Dirichlet boundary)."""
        return self.n == self.mask.size

    @property
    def A(self) -> sp.csr_matrix:
        """The SPD matrix ``|N_p| δ_pq − [q ∈ N_p ∩ Ω]`` (CSR, float64)."""
        return _once(self, "_A", self._build_A)

    def _build_A(self) -> sp.csr_matrix:
        h, w = self.shape
        m = self.mask
        idx = np.full(h * w, -1, dtype=np.int64)
        idx[self.flat] = np.arange(self.n)
        ys, xs = np.divmod(self.flat, w)
        deg = np.full(self.n, 4.0)
        deg -= (ys == 0).astype(float) + (ys == h - 1) + (xs == 0) + (xs == w - 1)
        rows = [np.arange(self.n)]
        cols = [np.arange(self.n)]
        vals = [deg]
        for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
            y2, x2 = ys + dy, xs + dx
            ok = (y2 >= 0) & (y2 < h) & (x2 >= 0) & (x2 < w)
            ok[ok] = m[y2[ok], x2[ok]]
            rows.append(np.flatnonzero(ok))
            cols.append(idx[y2[ok] * w + x2[ok]])
            vals.append(-np.ones(int(ok.sum())))
        return sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(self.n, self.n)
        )

    def rhs(self, target: np.ndarray, div: np.ndarray) -> np.ndarray:
        """Right-hand side (n, C): neighbours' known values minus ``div v`` at the mask pixels.
        ``target`` and ``div`` are (h, w, C) arrays over the crop."""
        k = known_sum(target.astype(np.float64, copy=False), self.mask) - div
        return k.reshape(-1, target.shape[2])[self.flat]

    # -- solvers ---------------------------------------------------------------------------------
    def choose(self, solver: str) -> str:
        """Resolve ``"auto"`` (see the module docstring)."""
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; use one of {', '.join(SOLVERS)}")
        if solver == "auto":
            if self._lu is not None:
                return "direct"
            if self._cap is not None or self.charges <= CAPACITANCE_MAX_CHARGES:
                return "capacitance"
            return "cg"
        return solver

    @property
    def charges(self) -> int:
        """The size of the capacitance system: boundary pixels plus border ghosts."""
        return _once(self, "_charges", self._count_charges)

    def _count_charges(self) -> int:
        m = self.mask
        nb = np.zeros_like(m)
        nb[1:] |= m[:-1]
        nb[:-1] |= m[1:]
        nb[:, 1:] |= m[:, :-1]
        nb[:, :-1] |= m[:, 1:]
        ghosts = int(m[0].sum() + m[-1].sum() + m[:, 0].sum() + m[:, -1].sum())
        return int((nb & ~m).sum()) + ghosts

    @property
    def capacitance(self) -> _Capacitance:
        """The capacitance-matrix solver of this mask (built on first use; factorised densely
        when :attr:`reuse` says that it will serve many solves, as in a drag)."""
        if self.singular:
            raise ValueError("the mask covers the whole image: the problem has no Dirichlet boundary")
        return _once(self, "_cap", lambda: _Capacitance(self.mask, dense=self.reuse))

    def factorize(self) -> None:
        """Build (once) the sparse LU factor used by the ``"direct"`` solver."""
        if self.singular:
            raise ValueError("the mask covers the whole image: the problem has no Dirichlet boundary")
        _once(self, "_lu", lambda: sla.splu(
            self.A.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
            options={"SymmetricMode": True},
        ))

    def solve(self, b: np.ndarray, solver: str = "auto", x0: np.ndarray | None = None) -> np.ndarray:
        """Solve ``A x = b`` for every column of ``b`` (n, C) → float64 (n, C)."""
        if self.singular:
            raise ValueError("the mask covers the whole image: use solve_neumann_dct")
        b = np.asarray(b, dtype=np.float64)
        squeeze = b.ndim == 1
        if squeeze:
            b = b[:, None]
        method = self.choose(solver)
        if method == "direct":
            self.factorize()
            x = self._lu.solve(np.ascontiguousarray(b))
        elif method == "capacitance":
            x = self.capacitance.solve_rhs(b)
        elif method == "cg":
            x = self._pcg(b, x0)
        else:
            x = self._amg(b, x0)
        return x[:, 0] if squeeze else x

    def solve_div(
        self, target: np.ndarray, div: np.ndarray, solver: str = "auto", refine: bool = True
    ) -> np.ndarray:
        """Solve Δf = div v on the mask with f = ``target`` on ∂Ω (crop arrays (h, w, C));
        returns f on the mask pixels (n, C). The capacitance solver takes the boundary values
        as data (u = f* on Γ) rather than folding them into the right-hand side, which keeps
        its intermediate values O(1) (10× smaller rounding)."""
        if self.singular:
            raise ValueError("the mask covers the whole image: use solve_neumann_dct")
        method = self.choose(solver)
        if method != "capacitance":
            return self.solve(self.rhs(target, div), method)
        cap = self.capacitance
        src = -div.reshape(-1, div.shape[2])[self.flat].astype(np.float64)
        return cap.finish(cap.particular(src), src.sum(axis=0), cap.boundary_data(target), refine=refine)

    def solve_potential(self, target: np.ndarray, potential: np.ndarray, solver: str = "auto") -> np.ndarray:
        """Solve with a guidance field that is a gradient, v = ∇φ (import: φ = source;
        average, contrast, colour change: scaled images): f = φ + h with h harmonic in Ω and
        h = f* − φ on ∂Ω (Pérez et al. 2003, eq. 11). ``target`` and ``potential`` are (h, w, C)
        crop arrays; returns f on the mask pixels (n, C). The capacitance solver needs a single
        FFT solve for it (no particular solution)."""
        if self.singular:
            raise ValueError("the mask covers the whole image: use solve_neumann_dct")
        method = self.choose(solver)
        c = target.shape[2]
        pot_omega = potential.reshape(-1, c)[self.flat].astype(np.float64)
        if method == "capacitance":
            cap = self.capacitance
            gy, gx = cap.gamma
            data = target[gy, gx].astype(np.float64) - potential[gy, gx]
            return pot_omega + cap.harmonic(data)
        diff = target.astype(np.float64) - potential
        return pot_omega + self.solve(self.rhs(diff, 0.0), method)

    def _precondition(self, r: np.ndarray) -> np.ndarray:
        h, w = self.shape
        lam = _once(self, "_lam", lambda: _dst_eigenvalues(h, w).astype(np.float32)[:, :, None])
        z = np.zeros((h * w, r.shape[1]), dtype=np.float32)
        z[self.flat] = r
        z = z.reshape(h, w, -1)
        z = sfft.dstn(z, type=1, axes=(0, 1), norm="ortho", workers=_WORKERS, overwrite_x=True)
        z /= lam
        z = sfft.dstn(z, type=1, axes=(0, 1), norm="ortho", workers=_WORKERS, overwrite_x=True)
        return z.reshape(h * w, -1)[self.flat].astype(np.float64)

    def _pcg(self, b: np.ndarray, x0: np.ndarray | None) -> np.ndarray:
        """CG preconditioned by the bounding-box DST Poisson solve, one run per column, the
        columns advanced together."""
        A = self.A
        x = np.zeros_like(b) if x0 is None else np.array(x0, dtype=np.float64).reshape(b.shape)
        r = b - A @ x if x0 is not None else b.copy()
        z = self._precondition(r)
        p = z.copy()
        rz = np.einsum("ij,ij->j", r, z)
        active = np.abs(z).max(axis=0) > _CG_TOL
        for _ in range(_CG_MAXITER):
            if not active.any():
                return x
            cols = np.flatnonzero(active)
            pa = p[:, cols]
            Ap = A @ pa
            denom = np.einsum("ij,ij->j", pa, Ap)
            alpha = np.where(denom > 0, rz[cols] / np.where(denom > 0, denom, 1.0), 0.0)
            x[:, cols] += alpha * pa
            r[:, cols] -= alpha * Ap
            zc = self._precondition(r[:, cols])
            rz_new = np.einsum("ij,ij->j", r[:, cols], zc)
            beta = rz_new / np.where(rz[cols] != 0, rz[cols], 1.0)
            p[:, cols] = zc + beta * pa
            rz[cols] = rz_new
            done = (np.abs(zc).max(axis=0) <= _CG_TOL) & (np.abs(alpha[None, :] * pa).max(axis=0) <= _CG_TOL)
            active[cols[done]] = False
        # not converged (pathological masks): finish exactly
        return self.solve(b, "direct")

    def _amg(self, b: np.ndarray, x0: np.ndarray | None) -> np.ndarray:
        import pyamg

        ml = _once(self, "_ml", lambda: pyamg.ruge_stuben_solver(self.A))
        out = np.empty_like(b)
        for c in range(b.shape[1]):
            guess = None if x0 is None else np.asarray(x0, dtype=np.float64).reshape(b.shape)[:, c]
            out[:, c] = ml.solve(b[:, c], x0=guess, tol=1e-9, accel="cg", maxiter=200)
        return out


def _morton(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Z-order (Morton) code of non-negative integer coordinates < 2¹⁶."""
    def spread(v: np.ndarray) -> np.ndarray:
        v = v.astype(np.uint64) & np.uint64(0xFFFF)
        v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF)
        v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F)
        v = (v | (v << np.uint64(2))) & np.uint64(0x33333333)
        v = (v | (v << np.uint64(1))) & np.uint64(0x55555555)
        return v

    return (spread(y) << np.uint64(1)) | spread(x)


_BLAS_CONTROLLER: Any = None
_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0
_BLAS_LIMITER: Any = None


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """OpenBLAS with several threads collapses on a loaded machine (threads spin on busy
    cores: a 1700² Cholesky took seconds instead of a fraction of a second here); the dense
    capacitance algebra is small, so run it on one thread. The limit is process-wide: it is
    set when the first thread enters and restored when the last one leaves (nested limits
    restored in another order than they were set would leave BLAS at the wrong count)."""
    global _BLAS_CONTROLLER, _BLAS_USERS, _BLAS_LIMITER

    with _BLAS_LOCK:
        if _BLAS_CONTROLLER is None:
            try:
                from threadpoolctl import ThreadpoolController

                _BLAS_CONTROLLER = ThreadpoolController()
            except ImportError:  # pragma: no cover
                _BLAS_CONTROLLER = False
        if _BLAS_CONTROLLER is not False:
            if _BLAS_USERS == 0:
                _BLAS_LIMITER = _BLAS_CONTROLLER.limit(limits=1, user_api="blas")
            _BLAS_USERS += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            if _BLAS_CONTROLLER is not False:
                _BLAS_USERS -= 1
                if _BLAS_USERS == 0:
                    _BLAS_LIMITER.restore_original_limits()
                    _BLAS_LIMITER = None


class _Capacitance:
    """Capacitance-matrix solver (Buzbee, Dorr, George & Golub 1971; Proskurowski & Widlund
    1976) on the torus that holds the crop.

    On a periodic grid the 5-point Laplacian L_T is diagonalised by the FFT and its
    pseudo-inverse G_T is a convolution with a tabulated kernel g. Write the solution as
    ``u = G_T (s₀ + E σ) + c`` with ``s₀`` the source on Ω, ``σ`` unknown charges on the
    boundary pixels Γ (and on ghost pixels past the image border) and ``c`` a constant. Then
    ``(L_T u)_p = s₀_p`` on Ω whatever σ, and the m + 1 conditions — ``u = data`` on Γ,
    ``u_ghost = u_partner`` (the free border) and ``Σ(s₀ + Eσ) = 0`` (solvability on the torus)
    — fix σ and c. The m × m capacitance matrix ``K_qr = g(q − r)`` is gathered from the table
    (its upper half, mirrored) and, once per mask, factorised (Cholesky when there are no ghosts
    and m is small or the solver will be reused, LU of the bordered matrix with ghosts) or given
    a HODLR preconditioner for CG (one-shot solves with a long boundary: see the module
    docstring); a solve is then two FFT Poisson solves of the crop plus the boundary system —
    or one FFT solve when the guidance is a gradient (import: the clone being dragged).
    """

    def __init__(self, mask: np.ndarray, dense: bool = False) -> None:
        import scipy.linalg as sl

        m = mask
        h, w = m.shape
        top, bottom = bool(m[0].any()), bool(m[-1].any())
        left, right = bool(m[:, 0].any()), bool(m[:, -1].any())
        self.oy, self.ox = int(top), int(left)
        self.H = sfft.next_fast_len(h + top + bottom, real=True)
        self.W = sfft.next_fast_len(w + left + right, real=True)
        self.shape = (h, w)
        nb = np.zeros_like(m)
        nb[1:] |= m[:-1]
        nb[:-1] |= m[1:]
        nb[:, 1:] |= m[:, :-1]
        nb[:, :-1] |= m[:, 1:]
        gy, gx = np.nonzero(nb & ~m)
        order = np.argsort(_morton(gy, gx), kind="stable")  # spatially coherent (HODLR blocks)
        gy, gx = gy[order], gx[order]
        self.gamma = (gy, gx)  # crop coordinates of the Dirichlet boundary
        gys, gxs, pys, pxs = [], [], [], []
        for cond, (yy, xx), (dy, dx) in (
            (top, (np.zeros(0, int), np.flatnonzero(m[0])), (-1, 0)),
            (bottom, (np.zeros(0, int), np.flatnonzero(m[-1])), (1, 0)),
            (left, (np.flatnonzero(m[:, 0]), np.zeros(0, int)), (0, -1)),
            (right, (np.flatnonzero(m[:, -1]), np.zeros(0, int)), (0, 1)),
        ):
            if not cond:
                continue
            if dy != 0:
                py = np.full(xx.size, 0 if dy < 0 else h - 1)
                px = xx
            else:
                py = yy
                px = np.full(yy.size, 0 if dx < 0 else w - 1)
            pys.append(py)
            pxs.append(px)
            gys.append(py + dy)
            gxs.append(px + dx)
        self.nd = int(gy.size)
        self.ng = int(sum(a.size for a in gys))
        ty = np.concatenate([gy, *gys]) + self.oy
        tx = np.concatenate([gx, *gxs]) + self.ox
        self.ty, self.tx = ty, tx
        ky = 2.0 - 2.0 * np.cos(2 * np.pi * np.arange(self.H) / self.H)
        kx = 2.0 - 2.0 * np.cos(2 * np.pi * np.arange(self.W // 2 + 1) / self.W)
        lam = ky[:, None] + kx[None, :]
        lam[0, 0] = 1.0
        self.ghat = 1.0 / lam
        self.ghat[0, 0] = 0.0
        self.ghat32 = self.ghat.astype(np.float32)
        g = sfft.irfft2(self.ghat32, s=(self.H, self.W), workers=_WORKERS)
        # K_qr = g(q − r): gather from the table tiled 2×2, indexed by differences of flat codes
        g2 = np.empty((2 * self.H, 2 * self.W), dtype=np.float32)  # np.tile is 5× slower
        for oy_ in (0, self.H):
            for ox_ in (0, self.W):
                g2[oy_ : oy_ + self.H, ox_ : ox_ + self.W] = g
        g2 = g2.ravel()
        base = self.H * 2 * self.W + self.W
        code = ty * (2 * self.W) + tx
        mm = int(code.size)
        if self.ng:
            K = g2.take(np.subtract.outer(code, code) + base)
        else:
            # K is symmetric: gather its upper triangle by blocks of rows and mirror each block
            # (the gather is the cost: half as many random reads)
            K = np.empty((mm, mm), dtype=np.float32)
            for i in range(0, mm, _KROWS):
                j = min(i + _KROWS, mm)
                K[i:j, i:] = g2.take(np.subtract.outer(code[i:j], code[i:]) + base)
                for k in range(j, mm, _KROWS):  # mirror by square tiles (cache-friendly)
                    K[k : k + _KROWS, i:j] = K[i:j, k : k + _KROWS].T
        if self.ng:
            self.py = np.concatenate(pys) + self.oy
            self.px = np.concatenate(pxs) + self.ox
            pcode = self.py * (2 * self.W) + self.px
            K[self.nd :] -= g2.take(np.subtract.outer(pcode, code) + base)
        self._K = K
        self._e = np.zeros(K.shape[0], dtype=np.float32)
        self._e[: self.nd] = 1.0
        self._chol = None
        self._lu = None
        self._hodlr: HODLR | None = None
        #: K⁻¹1 and its sum for the Cholesky path, solved here, on their own: a triangular
        #: solve's rounding depends on how many right-hand sides it is given (OpenBLAS blocks
        #: the columns), so K⁻¹r is always solved alone and a placement gives the same bits
        #: at every call of a session
        self._z1: np.ndarray | None = None
        self._s1 = 0.0
        with _one_blas_thread():
            if self.ng:
                M = np.zeros((mm + 1, mm + 1), dtype=np.float32)
                M[:mm, :mm] = K
                M[:mm, mm] = self._e
                M[mm, :mm] = 1.0
                self._lu = sl.lu_factor(M, check_finite=False)
            elif mm <= HODLR_MIN_CHARGES or (dense and mm <= CAPACITANCE_DENSE_MAX):
                self._chol = sl.cho_factor(K, lower=False, check_finite=False)
                z1 = sl.cho_solve(self._chol, np.ones((mm, 1), np.float32), check_finite=False)
                self._z1 = z1[:, 0].astype(np.float64)
                self._s1 = float(self._z1.sum())
            else:
                # CG on K preconditioned by a HODLR approximate inverse: O(m² k) instead of m³/3
                self._hodlr = HODLR(K, 0, mm, _HODLR_LEAF, _hodlr_rank(mm), np.random.default_rng(0))
        self.m = int(K.shape[0])
        self._mask = m
        self._omega: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._lock = threading.RLock()

    @property
    def omega(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols) of the mask pixels in the crop and their flat torus indices (computed on
        first use: the import path never needs them)."""
        def build() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            my, mx = np.divmod(np.flatnonzero(self._mask), self.shape[1])
            return my, mx, (my + self.oy) * self.W + mx + self.ox

        return _once(self, "_omega", build)

    def convolve(self, s: np.ndarray, const: np.ndarray | None = None) -> np.ndarray:
        """G_T s for a torus array (H, W, C), plus the per-channel constant ``const`` if given
        (put in the zero frequency, which G_T annihilates: adding it afterwards to the strided
        crop would cost more than the transform's multiply)."""
        c = sfft.rfft2(s, axes=(0, 1), workers=_WORKERS, overwrite_x=True)
        c *= self.ghat[:, :, None] if c.dtype == np.complex128 else self.ghat32[:, :, None]
        if const is not None:
            c[0, 0, :] = np.asarray(const) * (self.H * self.W)
        return sfft.irfft2(c, s=(self.H, self.W), axes=(0, 1), workers=_WORKERS, overwrite_x=True)

    def particular(self, src_omega: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """U₀ = G_T s₀ for the source values (n, C) on the mask pixels, kept where it is
        needed: on the mask, on the charges and on the ghosts' partners."""
        s0 = np.zeros((self.H, self.W, src_omega.shape[1]))
        my, mx, omega_t = self.omega
        s0[my + self.oy, mx + self.ox] = src_omega
        u0 = self.convolve(s0).reshape(self.H * self.W, -1)
        partners = u0.take(self.py * self.W + self.px, axis=0) if self.ng else None
        return u0.take(omega_t, axis=0), u0.take(self.ty * self.W + self.tx, axis=0), partners

    def finish(
        self,
        part: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None],
        src_sum: np.ndarray,
        data: np.ndarray,
        refine: bool = True,
    ) -> np.ndarray:
        """Charges from the boundary conditions, then u on the mask pixels (n, C).
        ``part`` = U₀ on the mask, on the charges and on the ghosts' partners (``None``: zero).
        ``refine``: one step of iterative refinement (float32 factors → ~1e-10; without it
        the charges are good to ~1e-5 relative, far below 0.5/255 in the result)."""
        u0_omega, u0_charges, u0_partners = part
        r = np.zeros((self.m, data.shape[1]))
        r[: self.nd] = data
        if u0_charges is not None:
            r[: self.nd] -= u0_charges[: self.nd]
            if self.ng:
                r[self.nd :] = u0_partners - u0_charges[self.nd :]
        sigma, c = self._charges(r, -np.asarray(src_sum, dtype=np.float64), refine)
        conv = self._potential(sigma, c).reshape(self.H * self.W, -1).take(self.omega[2], axis=0)
        conv = conv.astype(np.float64)
        if u0_omega is not None:
            conv += u0_omega
        return conv

    def _charges(self, r: np.ndarray, s: np.ndarray, refine: bool) -> tuple[np.ndarray, np.ndarray]:
        """σ and c from the bordered system, with one refinement step when asked (and when
        the factors are dense: the CG path is already solved to :data:`_KCG_TOL`)."""
        with _one_blas_thread():
            sigma, c = self._bordered(r, s)
            if refine and (self._chol is not None or self._lu is not None):
                ks = self._kmul(sigma)
                res_r = r - ks - self._e[:, None] * c[None, :]
                res_s = s - sigma.sum(axis=0)
                d_sigma, d_c = self._bordered(res_r, res_s)
                sigma += d_sigma
                c += d_c
        return sigma, c

    def _potential(self, sigma: np.ndarray, const: np.ndarray | None = None) -> np.ndarray:
        """G_T σ (+ const) on the torus (H, W, C), float32."""
        q = np.zeros((self.H, self.W, sigma.shape[1]), dtype=_CHARGE_DTYPE)
        q[self.ty, self.tx] = sigma  # the charge positions are distinct
        return self.convolve(q, const)

    def harmonic_crop(self, data: np.ndarray, refine: bool = True) -> np.ndarray:
        """:meth:`harmonic` as a dense float32 (h, w, C) array over the crop (the values off
        the mask are meaningless): no gather of the mask pixels, for callers that blend the
        result in with ``np.copyto(..., where=mask)``."""
        r = np.zeros((self.m, data.shape[1]))
        r[: self.nd] = data
        sigma, c = self._charges(r, np.zeros(data.shape[1]), refine)
        h, w = self.shape
        return self._potential(sigma, c)[self.oy : self.oy + h, self.ox : self.ox + w]

    def _bordered(self, r: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Solve [K e; 1ᵀ 0] [σ; c] = [r; s] with the float32 factors (float64 out)."""
        import scipy.linalg as sl

        scale = float(np.abs(r).max()) + float(np.abs(s).max()) or 1.0
        r32 = (r / scale).astype(np.float32)
        if self._lu is not None:
            sol = sl.lu_solve(self._lu, np.vstack([r32, (s / scale)[None, :].astype(np.float32)]),
                              check_finite=False).astype(np.float64) * scale
            return sol[:-1], sol[-1]
        if self._chol is None:
            # K⁻¹1 and K⁻¹r by one CG run, at every call: CG stops when all its columns have
            # converged, so the same right-hand sides always give the same bits
            both = self._kinv(np.hstack([np.ones((r.shape[0], 1)), r / scale]))
            z1, s1 = both[:, 0], float(both[:, 0].sum())
            zr = both[:, 1:] * scale
        else:
            assert self._z1 is not None
            z1, s1 = self._z1, self._s1
            zr = sl.cho_solve(self._chol, r32, check_finite=False).astype(np.float64) * scale
        c = (zr.sum(axis=0) - s) / s1
        return zr - z1[:, None] * c[None, :], c

    def harmonic(self, data: np.ndarray, refine: bool = True) -> np.ndarray:
        """The discrete harmonic function on the mask (n, C) taking the values ``data``
        (nd, C) on Γ (free at the image border): one FFT solve."""
        return self.finish((None, None, None), np.zeros(data.shape[1]), data, refine=refine)

    def solve_div_crop(self, target: np.ndarray, div: np.ndarray, refine: bool = True) -> np.ndarray:
        """:meth:`MaskedPoisson.solve_div` as a dense float32 (h, w, C) array over the crop
        (valid on the mask only): the particular solution U₀ = G_T s₀ (s₀ = −div v on Ω, float64)
        is kept dense, so no mask pixel is gathered or scattered."""
        h, w = self.shape
        c = div.shape[2]
        s0 = np.zeros((self.H, self.W, c))
        inner = s0[self.oy : self.oy + h, self.ox : self.ox + w]
        np.negative(div, out=inner, where=np.repeat(self._mask[:, :, None], c, axis=2))
        src_sum = inner.reshape(h, w * c).sum(axis=0).reshape(w, c).sum(axis=0)
        u0 = self.convolve(s0)
        r = np.empty((self.m, c))
        gy, gx = self.gamma
        r[: self.nd] = target[gy, gx]
        r[: self.nd] -= u0[self.ty[: self.nd], self.tx[: self.nd]]
        if self.ng:
            r[self.nd :] = u0[self.py, self.px] - u0[self.ty[self.nd :], self.tx[self.nd :]]
        sigma, const = self._charges(r, -src_sum, refine)
        field = self._potential(sigma, const)[self.oy : self.oy + h, self.ox : self.ox + w]
        field += u0[self.oy : self.oy + h, self.ox : self.ox + w]
        return field

    def _kmul(self, x: np.ndarray) -> np.ndarray:
        """K x (float32 product, float64 out)."""
        return (self._K @ x.astype(np.float32)).astype(np.float64)

    def _kinv(self, r: np.ndarray) -> np.ndarray:
        """K⁻¹ r (m, C) by CG preconditioned with the HODLR approximate inverse, each iteration
        one dense product with K; stopped when every column's residual is below
        :data:`_KCG_TOL` of its right-hand side (max norm). Falls back to a dense Cholesky
        factorisation if CG stalls (never seen)."""
        import scipy.linalg as sl

        pre = self._hodlr
        assert pre is not None
        x = np.zeros_like(r)
        res = r.copy()
        z = pre.apply(res.astype(np.float32)).astype(np.float64)
        p = z.copy()
        rz = np.einsum("ij,ij->j", res, z)
        goal = _KCG_TOL * np.abs(r).max(axis=0)
        for _ in range(_KCG_MAXITER):
            kp = self._kmul(p)
            alpha = rz / np.einsum("ij,ij->j", p, kp)
            x += alpha * p
            res -= alpha * kp
            if np.all(np.abs(res).max(axis=0) <= goal):
                return x
            z = pre.apply(res.astype(np.float32)).astype(np.float64)
            rz_new = np.einsum("ij,ij->j", res, z)
            p = z + (rz_new / rz) * p
            rz = rz_new
        fac = sl.cho_factor(self._K, lower=False, check_finite=False)  # pragma: no cover
        return sl.cho_solve(fac, r.astype(np.float32), check_finite=False).astype(np.float64)

    def solve_rhs(self, b: np.ndarray) -> np.ndarray:
        """Solve A x = b (the masked system, zero data on Γ)."""
        u0 = self.particular(b)
        return self.finish(u0, b.sum(axis=0), np.zeros((self.nd, b.shape[1])))

    def boundary_data(self, target: np.ndarray) -> np.ndarray:
        """The Dirichlet values (nd, C) of a crop-shaped target."""
        return target[self.gamma[0], self.gamma[1]].astype(np.float64)


# ------------------------------------------------------------------------------------------------
# whole-image solvers (IPOL 2016, §3.2)


def solve_neumann_dct(div: np.ndarray, mean: np.ndarray | float) -> np.ndarray:
    """Solve ``Δf = div`` on the whole image with the free (Neumann) border: the DCT-II
    diagonalises the 5-point Laplacian with reflecting ends, eigenvalues
    ``(2 − 2cos πk/H) + (2 − 2cos πl/W)``. The null space (constants) is fixed by giving
    ``f`` the per-channel ``mean``. Returns float32 (H, W, C)."""
    d = _channels(np.asarray(div, dtype=np.float32))
    h, w = d.shape[:2]
    ly = 2.0 - 2.0 * np.cos(np.pi * np.arange(h) / h)
    lam = ly[:, None] + (2.0 - 2.0 * np.cos(np.pi * np.arange(w) / w))[None, :]
    lam[0, 0] = 1.0
    c = sfft.dctn(-d, type=2, axes=(0, 1), norm="ortho", workers=_WORKERS)
    c /= lam.astype(np.float32)[:, :, None]
    mu = np.broadcast_to(np.asarray(mean, dtype=np.float32), (d.shape[2],))
    c[0, 0, :] = mu * np.float32(np.sqrt(h * w))
    return sfft.idctn(c, type=2, axes=(0, 1), norm="ortho", workers=_WORKERS, overwrite_x=True)


def solve_periodic_fft(div: np.ndarray, mean: np.ndarray | float) -> np.ndarray:
    """Solve ``Δf = div`` on the torus (periodic boundary) with the FFT, eigenvalues
    ``4 − 2cos 2πk/H − 2cos 2πl/W``; the constant is fixed by the per-channel ``mean``.
    Returns float32 (H, W, C)."""
    d = _channels(np.asarray(div, dtype=np.float64))
    h, w = d.shape[:2]
    ky = 2.0 - 2.0 * np.cos(2 * np.pi * np.arange(h) / h)
    kx = 2.0 - 2.0 * np.cos(2 * np.pi * np.arange(w // 2 + 1) / w)
    lam = ky[:, None] + kx[None, :]
    lam[0, 0] = 1.0
    c = sfft.rfftn(-d, axes=(0, 1), workers=_WORKERS)
    c /= lam[:, :, None]
    c[0, 0, :] = np.broadcast_to(np.asarray(mean, dtype=np.float64), (d.shape[2],)) * (h * w)
    return sfft.irfftn(c, s=(h, w), axes=(0, 1), workers=_WORKERS).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# the generic driver

GuidanceFn = Callable[[tuple[slice, slice]], tuple[np.ndarray, np.ndarray]]


class ProblemCache:
    """A few :class:`MaskedPoisson` objects keyed by their crop mask (LRU); safe to share
    between threads (one problem per mask)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._d: OrderedDict[tuple, MaskedPoisson] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, mask_c: np.ndarray) -> MaskedPoisson:
        """The problem of ``mask_c``, made (unfactorised, cheap) if it is not cached."""
        key = (mask_c.shape, np.packbits(mask_c).tobytes())
        with self._lock:
            prob = self._d.get(key)
            if prob is None:
                prob = MaskedPoisson(mask_c)
                self._d[key] = prob
                while len(self._d) > self.size:
                    self._d.popitem(last=False)
            else:
                self._d.move_to_end(key)
        return prob


def solve_guided(
    target: np.ndarray,
    mask: np.ndarray | None,
    guidance: GuidanceFn,
    solver: str = "auto",
    cache: ProblemCache | None = None,
    potential: Callable[[tuple[slice, slice]], np.ndarray] | None = None,
) -> np.ndarray:
    """Minimise ∫_Ω |∇f − v|² with f = target outside Ω (Pérez et al. 2003).

    ``target`` is (H, W, C) float, ``mask`` a boolean (H, W) array or ``None`` for the whole
    image, ``guidance(region)`` returns the edge fields ``(vx, vy)`` over ``target[region]``.
    A mask covering the whole image (no Dirichlet boundary) is solved by the DCT with the mean
    of ``target`` kept. When the guidance is the gradient of a known image, ``potential(region)``
    returns that image and the masked solve uses :meth:`MaskedPoisson.solve_potential`.
    Returns a new float32 (H, W, C) array equal to ``target`` outside Ω.
    """
    t = _channels(target)
    h, w = t.shape[:2]
    if mask is None or bool(np.all(mask)):
        vx, vy = guidance((slice(0, h), slice(0, w)))
        return solve_neumann_dct(divergence(vx, vy), channel_mean(t))
    ys, xs = crop_box(mask)
    mask_c = mask[ys, xs]
    prob = cache.get(mask_c) if cache is not None else MaskedPoisson(mask_c)
    tc = t[ys, xs]
    if potential is not None:
        x = prob.solve_potential(tc, potential((ys, xs)), solver)
    else:
        vx, vy = guidance((ys, xs))
        x = prob.solve_div(tc, divergence(vx, vy), solver)
    out = np.array(t, dtype=np.float32, copy=True)
    out[ys, xs][mask_c] = x
    return out
