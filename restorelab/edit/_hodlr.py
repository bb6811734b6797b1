"""A HODLR (hierarchically off-diagonal low-rank) approximate inverse of an SPD matrix, used
as the preconditioner of conjugate gradients on the capacitance matrix.

Ambikasaran & Darve, "An O(N log N) fast direct solver for partial hierarchically semi-separable
matrices" (J. Sci. Comput. 2013): split the (spatially ordered) index set in two halves,
approximate the off-diagonal block by a rank-k product ``B ≈ U Vᵀ`` (randomised range finder,
Halko, Martinsson & Tropp 2011) and recurse on the diagonal blocks down to leaves that are
Cholesky-factorised. The inverse of ``diag(A, C) + Z Yᵀ`` is applied with the
Sherman–Morrison–Woodbury formula. Boundary-integral kernels (here the lattice Green's function
between boundary pixels) have off-diagonal blocks of low numerical rank, so a small k gives a
preconditioner with which CG converges in a few iterations; the cost is O(m² k) for the
randomised sampling instead of the m³/3 of a dense Cholesky factorisation.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sl
from scipy.linalg.lapack import get_lapack_funcs

__all__ = ["HODLR"]


class HODLR:
    """Approximate inverse of the SPD matrix ``K[a:b, a:b]`` (float32), applied by :meth:`apply`."""

    def __init__(self, K: np.ndarray, a: int, b: int, leaf: int, rank: int, rng: np.random.Generator) -> None:
        self.a, self.b = a, b
        n = b - a
        self.leaf = n <= leaf
        if self.leaf:
            self.fac = sl.cho_factor(K[a:b, a:b], lower=False, check_finite=False)
            return
        mid = a + n // 2
        self.n1 = mid - a
        self.left = HODLR(K, a, mid, leaf, rank, rng)
        self.right = HODLR(K, mid, b, leaf, rank, rng)
        blk = K[a:mid, mid:b]
        k = min(rank, mid - a, b - mid)
        q, _ = np.linalg.qr(blk @ rng.standard_normal((b - mid, k)).astype(K.dtype))
        u = np.ascontiguousarray(q)  # n1 × k
        v = np.ascontiguousarray((q.T @ blk).T)  # n2 × k, blk ≈ u vᵀ
        self.u, self.v, self.k = u, v, k
        self.lu_ = self.left.apply(u)  # A⁻¹ u
        self.rv_ = self.right.apply(v)  # C⁻¹ v
        getrf, getrs = get_lapack_funcs(("getrf", "getrs"), (K,))
        self._getrs = getrs
        s = np.eye(2 * k, dtype=K.dtype)
        s[:k, k:] += v.T @ self.rv_
        s[k:, :k] += u.T @ self.lu_
        lu, piv, _info = getrf(s)
        self.s = (lu, piv)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """≈ K⁻¹ x for x (n, C)."""
        if self.leaf:
            return sl.cho_solve(self.fac, x, check_finite=False)
        yl = self.left.apply(x[: self.n1])
        yr = self.right.apply(x[self.n1 :])
        w = np.concatenate([self.v.T @ yr, self.u.T @ yl])
        t, _info = self._getrs(*self.s, w)  # LAPACK directly: lu_solve's checks cost 15× the solve
        yl -= self.lu_ @ t[: self.k]
        yr -= self.rv_ @ t[self.k :]
        return np.concatenate([yl, yr])
