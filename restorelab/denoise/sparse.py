"""Sparse and redundant representations: R(x) = λ‖γ‖₀ with Dγ = x (per patch).

Elad & Aharon, "Image denoising via sparse and redundant representations over learned
dictionaries", IEEE Trans. Image Processing 15(12), 2006. Every (overlapping) √n×√n patch
``R_ij x`` of the image is assumed to have a sparse code ``γ_ij`` over a redundant
dictionary D (n × K, unit-norm atoms); the MAP objective is

    min_{x, γ}  λ‖x − y‖² + Σ_ij μ_ij‖γ_ij‖₀ + Σ_ij ‖Dγ_ij − R_ij x‖².

For fixed D it is solved in two steps: (1) sparse coding of each noisy patch with the
error-constrained rule ``min ‖γ‖₀ s.t. ‖R_ij y − Dγ‖² ≤ n(Cσ)²`` (C ≈ 1.15) by Orthogonal
Matching Pursuit (Pati, Rezaiifar & Krishnaprasad 1993), then (2) the closed-form patch
averaging

    x̂ = (λ y + Σ_ij R_ijᵀ D γ_ij) / (λ + Σ_ij R_ijᵀ R_ij).

D is the overcomplete DCT (64 × 256 for 8×8 patches) or, with ``ksvd_iters > 0``, that
dictionary refined by K-SVD on the noisy image's own patches (Aharon, Elad & Bruckstein,
"K-SVD: an algorithm for designing overcomplete dictionaries for sparse representation",
IEEE Trans. Signal Processing 54(11), 2006): alternate sparse coding of the training patches
and, atom by atom, a rank-1 SVD update of the atom and of the coefficients that use it.

OMP is vectorised over all patches at once (the greedy selection, a small batched
least-squares solve on the selected atoms' Gram sub-matrix as in Batch-OMP of Rubinstein,
Zibulevsky & Elad 2008, and the residual update), with per-patch "active" flags so that
patches that reached their error target stop; there is no Python loop per patch. As in
Elad's KSVD-Box, the patch mean (DC) is removed before coding and added back.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

import numpy as np

from restorelab.denoise import register
from restorelab.denoise.base import Denoiser
from restorelab.denoise.wavelet import from_opponent, to_opponent
from restorelab.jobs import Progress
from restorelab.params import Param

__all__ = ["SparseDenoiser", "odct_dictionary", "omp", "omp_batches", "ksvd_job", "auto_stride"]


def odct_dictionary(patch: int = 8, atoms: int = 256) -> np.ndarray:
    """Overcomplete separable DCT dictionary (patch² × m², m = ⌈√atoms⌉), unit-norm columns.

    1-D atoms ``cos(π k t / m)``, t = 0..patch−1, k = 0..m−1, mean removed for k > 0, then the
    Kronecker product (Elad & Aharon 2006, KSVD-Box ``odctdict``). The first atom is constant.
    """
    m = int(np.ceil(np.sqrt(atoms)))
    t = np.arange(patch)[:, None]
    k = np.arange(m)[None, :]
    d1 = np.cos(np.pi * t * k / m)
    d1[:, 1:] -= d1[:, 1:].mean(axis=0)
    d1 /= np.linalg.norm(d1, axis=0)
    return np.kron(d1, d1)


def omp(
    D: Any,
    P: Any,
    eps2: Any = None,
    max_atoms: int | None = None,
) -> tuple[Any, Any, Any]:
    """Batched Orthogonal Matching Pursuit over all rows of P at once.

    ``D`` (n, K) with unit-norm columns, ``P`` (N, n) signals (numpy or torch). For each row
    greedily picks ``k = argmax |Dᵀ r|``, re-fits all chosen coefficients by least squares
    (``G_II γ = (Dᵀp)_I`` with the Gram matrix G = DᵀD, as in Batch-OMP), and stops when
    ``‖p − Dγ‖² ≤ eps2`` (per row or scalar) or after ``max_atoms`` atoms.
    Returns ``(idx (N, T) long, coef (N, T), nnz (N,))``; entries past ``nnz`` are 0.
    """
    job = omp_batches(D, P, eps2, max_atoms)
    while True:
        try:
            next(job)
        except StopIteration as stop:
            return stop.value


def omp_batches(
    D: Any, P: Any, eps2: Any = None, max_atoms: int | None = None, batch: int = 1 << 16
) -> Generator[Progress, None, tuple[Any, Any, Any]]:
    """:func:`omp` as a job: patches are coded in batches, one progress event per batch."""
    import torch

    from restorelab.denoise._torchutil import threads_for

    numpy_in = isinstance(P, np.ndarray)
    Pt = torch.as_tensor(P)
    if not Pt.is_floating_point():
        Pt = Pt.double()
    Dt = torch.as_tensor(D, dtype=Pt.dtype, device=Pt.device)
    if Pt.ndim != 2 or Dt.ndim != 2 or Pt.shape[1] != Dt.shape[0]:
        raise ValueError(f"omp: expected D (n, K) and P (N, n); got {tuple(Dt.shape)} and {tuple(Pt.shape)}")
    n_sig, n = Pt.shape
    T = min(int(max_atoms) if max_atoms else n, n, Dt.shape[1])
    if eps2 is None:
        eps2 = 0.0
    e2 = torch.as_tensor(eps2, dtype=Pt.dtype, device=Pt.device).expand(n_sig)
    G = Dt.T @ Dt
    idx = torch.zeros((n_sig, T), dtype=torch.long, device=Pt.device)
    coef = torch.zeros((n_sig, T), dtype=Pt.dtype, device=Pt.device)
    nnz = torch.zeros(n_sig, dtype=torch.long, device=Pt.device)
    n_batches = max(1, (n_sig + batch - 1) // batch)
    for b in range(n_batches):
        sl = slice(b * batch, min((b + 1) * batch, n_sig))
        with threads_for(Pt[sl]):  # one thread on small CPU blocks (busy machines)
            i, c, z = _omp_block(Dt, G, Pt[sl], e2[sl], T)
        idx[sl], coef[sl], nnz[sl] = i, c, z
        yield Progress(b + 1, n_batches, message=f"OMP: batch {b + 1}/{n_batches}")
    if numpy_in:
        return idx.numpy(), coef.numpy(), nnz.numpy()
    return idx, coef, nnz


def _omp_block(D: Any, G: Any, P: Any, e2: Any, T: int) -> tuple[Any, Any, Any]:
    """OMP on one block of signals; the working set is compacted as signals finish."""
    import torch

    N = P.shape[0]
    idx = torch.zeros((N, T), dtype=torch.long, device=P.device)
    coef = torch.zeros((N, T), dtype=P.dtype, device=P.device)
    nnz = torch.zeros(N, dtype=torch.long, device=P.device)
    keep = P.square().sum(1) > e2
    ids = torch.nonzero(keep).flatten()  # signals still being coded
    Pa, ea = P[ids], e2[ids]
    alpha0 = Pa @ D  # (A, K) = Dᵀp
    r = Pa
    sel = torch.zeros((ids.numel(), 0), dtype=torch.long, device=P.device)
    Dt = D.T.contiguous()
    for t in range(T):
        if ids.numel() == 0:
            break
        corr = (r @ D).abs_()
        if t > 0:
            corr.scatter_(1, sel, -1.0)  # never pick an atom twice
        sel = torch.cat([sel, corr.argmax(1, keepdim=True)], 1)  # (A, t+1)
        Gs = G[sel[:, :, None], sel[:, None, :]]
        rhs = torch.gather(alpha0, 1, sel)
        L, info = torch.linalg.cholesky_ex(Gs)
        g = torch.cholesky_solve(rhs[:, :, None], L)[..., 0]
        if bool((info != 0).any()):  # linearly dependent atoms (duplicates): least squares
            bad = info != 0
            g[bad] = (torch.linalg.pinv(Gs[bad]) @ rhs[bad, :, None])[..., 0]
        r = Pa - torch.bmm(g[:, None, :], Dt[sel])[:, 0]  # residual p − D_I γ_I
        done = (r.square().sum(1) <= ea) | (t + 1 == T)
        if bool(done.any()):
            fin = ids[done]
            idx[fin, : t + 1] = sel[done]
            coef[fin, : t + 1] = g[done]
            nnz[fin] = t + 1
            go = ~done
            ids, Pa, ea, alpha0, r, sel = ids[go], Pa[go], ea[go], alpha0[go], r[go], sel[go]
    return idx, coef, nnz


def _reconstruct(D: Any, idx: Any, coef: Any) -> Any:
    """Dγ for every row: Σ_t coef[:, t] D[:, idx[:, t]] (padding coefficients are 0)."""
    import torch

    gam = torch.zeros((idx.shape[0], D.shape[1]), dtype=coef.dtype, device=coef.device)
    gam.scatter_add_(1, idx, coef)
    return gam @ D.T


def ksvd_job(
    D: Any, P: Any, eps2: float, iters: int, max_atoms: int
) -> Generator[Progress, None, Any]:
    """K-SVD dictionary learning (Aharon, Elad & Bruckstein 2006) on the rows of P (N, n).

    Each iteration: OMP codes with the error target ``eps2``; then for every atom k the
    residual ``E_k = P_ω − Σ_{j≠k} d_j γ_j`` restricted to the patches ω that use k is
    replaced by its best rank-1 approximation ``d_k g_kᵀ`` (top eigenvector of E_kᵀE_k).
    The first (constant) atom is kept fixed. Yields progress after each iteration.
    """
    import torch

    from restorelab.denoise._torchutil import threads_for

    D = D.clone()
    K = D.shape[1]
    for it in range(iters):
        with threads_for(P):
            e2 = torch.full((P.shape[0],), eps2, dtype=P.dtype, device=P.device)
            idx, coef, nnz = _omp_block(D, D.T @ D, P, e2, max_atoms)
            R = P - _reconstruct(D, idx, coef)
            valid = torch.arange(idx.shape[1], device=P.device)[None, :] < nnz[:, None]
            rows_all, pos_all = torch.nonzero(valid, as_tuple=True)
            atom_all = idx[rows_all, pos_all]
            order = torch.argsort(atom_all, stable=True)  # group the (patch, slot) pairs by atom
            rows_all, pos_all = rows_all[order], pos_all[order]
            ends = torch.cumsum(torch.bincount(atom_all, minlength=K), 0).tolist()
            for k in range(1, K):
                a, b = ends[k - 1], ends[k]
                if a == b:  # unused atom: keep it
                    continue
                rows, pos = rows_all[a:b], pos_all[a:b]
                g_old = coef[rows, pos]
                E = R[rows] + g_old[:, None] * D[:, k][None, :]
                _, vecs = torch.linalg.eigh(E.T @ E)  # top right singular vector of E
                d_new = vecs[:, -1]
                g_new = E @ d_new
                D[:, k] = d_new
                coef[rows, pos] = g_new
                R[rows] = E - g_new[:, None] * d_new[None, :]
        yield Progress(it + 1, iters, message=f"K-SVD: iteration {it + 1}/{iters}")
    return D


def auto_stride(shape: tuple[int, int]) -> int:
    """Patch step for ``stride=0``: 1 up to 256² pixels, 2 up to 1024², 3 above (keeps the cost ~linear)."""
    n = shape[0] * shape[1]
    return 1 if n <= 256 * 256 else 2 if n <= 1024 * 1024 else 3


@register
class SparseDenoiser(Denoiser):
    """Sparse coding of overlapping patches over a redundant dictionary + patch averaging
    (Elad & Aharon 2006), optional K-SVD dictionary learning (Aharon, Elad & Bruckstein 2006)."""

    name = "sparse"
    title = "Sparse & redundant representations (OMP / K-SVD)"
    citation = (
        "Elad & Aharon, IEEE TIP 2006; Aharon, Elad & Bruckstein, IEEE TSP 2006 (K-SVD); "
        "Rubinstein, Zibulevsky & Elad 2008 (Batch-OMP)"
    )
    cost_s_per_mp = 20.0  # restorelab bench cost
    params = (
        Param("patch", int, 8, lo=3, hi=16, unit="px", label="Patch side", help="patch side √n"),
        Param("atoms", int, 256, lo=16, hi=1024, log=True,
              label="Dictionary atoms K", help="dictionary size K (overcomplete DCT with ⌈√K⌉² atoms)"),
        Param("C", float, 1.15, lo=0.5, hi=3.0, label="Stopping gain C",
              help="OMP stops when ‖p − Dγ‖² ≤ n(Cσ)²"),
        Param("max_atoms", int, 16, lo=1, hi=256, label="Atoms per patch (max)",
              help="at most this many atoms per patch"),
        Param("lam", float, lambda s: 30.0 / (255.0 * s) if s > 0 else 1.0, lo=0.0, hi=100.0,
              label="Noisy-image weight λ",
              help="weight λ of the noisy image in the patch average (Elad–Aharon: 30/σ₂₅₅)"),
        Param("stride", int, 0, lo=0, hi=8, unit="px",
              label="Patch stride",
              help="step between patches (1 = all overlapping patches; 0 = auto: 1 up to 256², then 2–3)"),
        Param("ksvd_iters", int, 0, lo=0, hi=50,
              label="K-SVD iterations", help="K-SVD iterations on the image's patches (0 = fixed DCT)"),
        Param("ksvd_patches", int, 20000, lo=1000, hi=1_000_000, log=True,
              label="K-SVD training patches",
              help="at most this many patches (fixed-seed subset) to train K-SVD on"),
        Param("color", str, "opponent", choices=("opponent", "rgb"),
              label="Colour space",
              help="colour images: code the channels of an orthonormal luminance/chrominance space, or RGB"),
    )

    def _job(
        self, x: np.ndarray, sigma: float, p: Mapping[str, Any]
    ) -> Generator[Progress, None, np.ndarray]:
        import torch

        y = x.astype(np.float64)
        color = y.shape[2] == 3 and p["color"] == "opponent"
        if color:
            y = to_opponent(y)
        y = y.astype(np.float32)
        from restorelab.device import resolve_device

        dev = resolve_device(self.device)
        D = torch.from_numpy(odct_dictionary(p["patch"], p["atoms"]).astype(np.float32)).to(dev)
        outs = []
        nc = y.shape[2]
        for c in range(nc):
            job = self._channel(torch.from_numpy(np.ascontiguousarray(y[:, :, c])).to(dev), sigma, p, D)
            while True:
                try:
                    ev = next(job)
                except StopIteration as stop:
                    outs.append(stop.value.cpu().numpy())
                    break
                ev.message = f"channel {c + 1}/{nc}: {ev.message}" if nc > 1 else ev.message
                yield ev
        out = np.stack(outs, axis=2)
        if color:
            out = from_opponent(out)
        return out.astype(np.float32)

    def _channel(self, y: Any, sigma: float, p: Mapping[str, Any], D: Any) -> Generator[Progress, None, Any]:
        import torch
        import torch.nn.functional as F

        ps = p["patch"]
        h0, w0 = y.shape
        s = max(1, min(p["stride"] or auto_stride((h0, w0)), ps))
        # pad (reflect) so that patches fit the grid exactly and every pixel is covered
        hh, ww = max(h0, ps), max(w0, ps)
        hh += (-(hh - ps)) % s
        ww += (-(ww - ps)) % s
        mode = "reflect" if (hh - h0) < h0 and (ww - w0) < w0 else "replicate"
        yp = F.pad(y[None, None], (0, ww - w0, 0, hh - h0), mode=mode)
        cols = F.unfold(yp, ps, stride=s)[0].T.contiguous()  # (N, n)
        dc = cols.mean(1, keepdim=True)
        P = cols - dc
        n = ps * ps
        eps2 = n * (p["C"] * sigma) ** 2
        if p["ksvd_iters"] > 0:
            g = torch.Generator().manual_seed(0)
            m = min(P.shape[0], p["ksvd_patches"])
            train = P[torch.randperm(P.shape[0], generator=g)[:m].to(P.device)]
            D = yield from ksvd_job(D, train, eps2, p["ksvd_iters"], p["max_atoms"])
        idx, coef, _ = yield from omp_batches(D, P, eps2, p["max_atoms"], batch=16384)
        rec = _reconstruct(D, idx, coef) + dc  # (N, n)
        num = F.fold(rec.T[None], (hh, ww), ps, stride=s)[0, 0]
        cnt = F.fold(torch.ones_like(rec).T[None], (hh, ww), ps, stride=s)[0, 0]
        lam = p["lam"]
        ypad = yp[0, 0]
        out = (lam * ypad + num) / (lam + cnt)
        return out[:h0, :w0]
