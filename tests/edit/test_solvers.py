"""Exactness of the Poisson solvers against a dense solve built independently from the energy."""

from __future__ import annotations

import numpy as np
import pytest

from restorelab.edit import seamless_clone
from restorelab.edit.solvers import MaskedPoisson, solve_neumann_dct, solve_periodic_fft

TOL = 0.5 / 255


def dense_reference(target: np.ndarray, mask: np.ndarray, vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
    """Minimise Σ_edges (f_q − f_p − v_pq)² over the mask pixels with f = target elsewhere,
    written pixel by pixel from the energy's gradient and solved with numpy.linalg.solve."""
    h, w = mask.shape
    c = target.shape[2]
    pix = list(zip(*np.nonzero(mask), strict=True))
    index = {p: k for k, p in enumerate(pix)}
    n = len(pix)
    A = np.zeros((n, n))
    b = np.zeros((n, c))
    for k, (i, j) in enumerate(pix):
        for di, dj in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            qi, qj = i + di, j + dj
            if not (0 <= qi < h and 0 <= qj < w):
                continue
            if dj == 1:
                v = vx[i, j]
            elif dj == -1:
                v = -vx[i, j - 1]
            elif di == 1:
                v = vy[i, j]
            else:
                v = -vy[i - 1, j]
            A[k, k] += 1
            b[k] -= v
            if (qi, qj) in index:
                A[k, index[(qi, qj)]] -= 1
            else:
                b[k] += target[qi, qj]
    if n == h * w:  # no Dirichlet boundary: pin the mean to the target's
        A = np.vstack([A, np.ones((1, n))])
        b = np.vstack([b, target.reshape(n, c).sum(axis=0, keepdims=True)])
        x = np.linalg.lstsq(A, b, rcond=None)[0]
    else:
        x = np.linalg.solve(A, b)
    out = target.copy()
    out[mask] = x
    return out


def _masks(h: int, w: int) -> dict[str, np.ndarray]:
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    out = {}
    out["disc"] = r < min(h, w) / 3
    out["ring_with_hole"] = (r < min(h, w) / 2.5) & (r > 2)
    two = np.zeros((h, w), bool)
    two[2:6, 2:7] = True
    two[h - 6 : h - 2, w - 8 : w - 3] = True
    out["two_components"] = two
    corner = np.zeros((h, w), bool)
    corner[: h // 2, : w // 2] = True
    out["touches_top_left"] = corner
    strip = np.zeros((h, w), bool)
    strip[5:9, :] = True
    out["full_width_strip"] = strip
    one = np.zeros((h, w), bool)
    one[0, w // 2] = True
    out["one_border_pixel"] = one
    rng = np.random.default_rng(3)
    out["random_speckle"] = rng.random((h, w)) < 0.4
    out["everything"] = np.ones((h, w), bool)
    return out


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    h, w = 14, 17
    src = rng.random((h, w, 3)).astype(np.float32)
    dst = rng.random((h, w, 3)).astype(np.float32) * 1.2 - 0.1  # values outside [0, 1] are kept
    return src, dst


@pytest.mark.parametrize("name", list(_masks(14, 17)))
@pytest.mark.parametrize("solver", ["direct", "capacitance", "cg", "amg", "auto"])
def test_clone_matches_dense_solve(scene, name: str, solver: str) -> None:
    src, dst = scene
    mask = _masks(*src.shape[:2])[name]
    s64, d64 = src.astype(np.float64), dst.astype(np.float64)
    ref = dense_reference(d64, mask, s64[:, 1:] - s64[:, :-1], s64[1:] - s64[:-1])
    out = seamless_clone(src, dst, mask, (0, 0), mode="import", solver=solver)
    assert out.dtype == np.float32 and out.shape == dst.shape
    assert np.abs(out - ref)[mask].max() <= TOL
    if solver == "direct":
        assert np.abs(out - ref)[mask].max() < 1e-5
    assert np.array_equal(out[~mask], dst[~mask])  # bit for bit outside the mask


@pytest.mark.parametrize("mode", ["mixed", "average"])
def test_mixed_and_average_match_dense(scene, mode: str) -> None:
    src, dst = scene
    mask = _masks(*src.shape[:2])["ring_with_hole"]
    s, d = src.astype(np.float64), dst.astype(np.float64)
    if mode == "average":
        vx = 0.5 * ((s[:, 1:] - s[:, :-1]) + (d[:, 1:] - d[:, :-1]))
        vy = 0.5 * ((s[1:] - s[:-1]) + (d[1:] - d[:-1]))
    else:
        def pg(a):
            gx = np.zeros_like(a)
            gy = np.zeros_like(a)
            gx[:, :-1] = a[:, 1:] - a[:, :-1]
            gy[:-1] = a[1:] - a[:-1]
            return gx, gy

        sx, sy = pg(s)
        dx, dy = pg(d)
        use_d = np.hypot(dx, dy) > np.hypot(sx, sy)
        vx = np.where(use_d, dx, sx)[:, :-1]
        vy = np.where(use_d, dy, sy)[:-1]
    ref = dense_reference(d, mask, vx, vy)
    out = seamless_clone(src, dst, mask, mode=mode, solver="direct")
    assert np.abs(out - ref)[mask].max() < 1e-5
    assert np.array_equal(out[~mask], dst[~mask])


def test_larger_mask_cg_agrees_with_direct() -> None:
    rng = np.random.default_rng(1)
    h, w = 120, 150
    src = rng.random((h, w, 3)).astype(np.float32)
    dst = rng.random((h, w, 3)).astype(np.float32)
    yy, xx = np.mgrid[:h, :w]
    mask = ((yy - 60) / 50) ** 2 + ((xx - 75) / 70) ** 2 < 1
    mask[55:65, 70:80] = False  # a hole
    a = seamless_clone(src, dst, mask, solver="direct")
    b = seamless_clone(src, dst, mask, solver="cg")
    assert np.abs(a - b).max() <= TOL / 5


def test_masked_poisson_matrix_is_spd_laplacian() -> None:
    m = np.zeros((5, 6), bool)
    m[0:3, 0:2] = True
    A = MaskedPoisson(m).A.toarray()
    assert np.allclose(A, A.T)
    assert np.all(np.linalg.eigvalsh(A) > 0)
    # the corner pixel (0, 0) has two neighbours inside the image, both in the mask
    assert A[0, 0] == 2 and A[0].sum() == 0


def test_dct_solver_matches_dense_neumann() -> None:
    rng = np.random.default_rng(2)
    f = rng.random((9, 11, 2))
    vx = rng.normal(size=(9, 10, 2))
    vy = rng.normal(size=(8, 11, 2))
    ref = dense_reference(f, np.ones((9, 11), bool), vx, vy)
    from restorelab.edit.solvers import divergence

    out = solve_neumann_dct(divergence(vx, vy), f.reshape(-1, 2).mean(axis=0))
    assert np.abs(out - ref).max() < 1e-4


def test_fft_solver_inverts_periodic_laplacian() -> None:
    rng = np.random.default_rng(4)
    f = rng.random((12, 10, 1))
    lap = np.roll(f, 1, 0) + np.roll(f, -1, 0) + np.roll(f, 1, 1) + np.roll(f, -1, 1) - 4 * f
    out = solve_periodic_fft(lap, f.mean())
    assert np.abs(out - f).max() < 1e-5


def test_capacitance_hodlr_cg_path_matches_dense(scene, monkeypatch) -> None:
    """Long boundaries solve the capacitance system by CG preconditioned with a HODLR
    approximate inverse; force it on small masks, with tiny leaves and rank 2 so that CG has
    to iterate (the preconditioner alone is far from exact)."""
    from restorelab.edit import solvers

    monkeypatch.setattr(solvers, "HODLR_MIN_CHARGES", 0)
    monkeypatch.setattr(solvers, "CAPACITANCE_DENSE_MAX", 0)
    monkeypatch.setattr(solvers, "_HODLR_LEAF", 8)
    monkeypatch.setattr(solvers, "_HODLR_RANK", 2)
    src, dst = scene
    s64, d64 = src.astype(np.float64), dst.astype(np.float64)
    for name in ("disc", "ring_with_hole", "two_components"):
        mask = _masks(*src.shape[:2])[name]
        ref = dense_reference(d64, mask, s64[:, 1:] - s64[:, :-1], s64[1:] - s64[:-1])
        prob = MaskedPoisson(mask)
        assert prob.capacitance._hodlr is not None and prob.capacitance._chol is None, name
        out = seamless_clone(src, dst, mask, solver="capacitance")
        assert np.abs(out - ref)[mask].max() < 1e-4, name
        assert np.array_equal(out[~mask], dst[~mask])


def test_hodlr_preconditioner_is_exact_at_full_rank() -> None:
    """With a rank equal to the block size the HODLR 'approximation' is exact: apply = K⁻¹."""
    from restorelab.edit._hodlr import HODLR

    rng = np.random.default_rng(0)
    a = rng.standard_normal((40, 40))
    k = (a @ a.T / 40 + np.eye(40)).astype(np.float32)
    h = HODLR(k, 0, 40, leaf=6, rank=40, rng=rng)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    ref = np.linalg.solve(k.astype(np.float64), x)
    assert np.abs(h.apply(x) - ref).max() < 1e-3 * np.abs(ref).max()
    h2 = HODLR(k, 0, 40, leaf=6, rank=1, rng=rng)  # rank 1: an approximation only
    assert np.abs(h2.apply(x) - ref).max() > 1e-3 * np.abs(ref).max()


def test_hodlr_cg_default_parameters_match_direct_on_holes_and_components(monkeypatch) -> None:
    """The one-shot path for long boundaries (HODLR-preconditioned CG with the default leaf
    size and rank) on a mask with two components, each with a hole, against the sparse LU."""
    from restorelab.edit import solvers

    monkeypatch.setattr(solvers, "HODLR_MIN_CHARGES", 100)
    h, w = 120, 150
    yy, xx = np.mgrid[:h, :w]
    r1 = np.hypot(yy - 50, xx - 45)
    r2 = np.hypot(yy - 70, xx - 110)
    mask = ((r1 < 38) & (r1 > 9)) | ((r2 < 30) & (np.abs(yy - 70) > 3))
    rng = np.random.default_rng(5)
    src = rng.random((h, w, 3)).astype(np.float32)
    dst = rng.random((h, w, 3)).astype(np.float32)
    cap = MaskedPoisson(mask).capacitance  # what "auto" builds for this mask
    assert cap._hodlr is not None and not cap._hodlr.leaf  # at least one low-rank level
    out = seamless_clone(src, dst, mask, solver="auto")
    ref = seamless_clone(src, dst, mask, solver="direct")
    assert np.abs(out - ref)[mask].max() < 1e-5
    assert np.array_equal(out[~mask], dst[~mask])


@pytest.mark.parametrize("path", ["cholesky", "hodlr_cg"])
def test_capacitance_solves_are_bitwise_repeatable(path: str, monkeypatch) -> None:
    """A drag session commits the preview's result, so the same placement must give the same
    bits at every call, the first (which may set up lazily built state) included."""
    from restorelab.edit import solvers

    if path == "hodlr_cg":
        monkeypatch.setattr(solvers, "HODLR_MIN_CHARGES", 0)
        monkeypatch.setattr(solvers, "CAPACITANCE_DENSE_MAX", 0)
        monkeypatch.setattr(solvers, "_HODLR_LEAF", 8)
        monkeypatch.setattr(solvers, "_HODLR_RANK", 2)
    mask = _masks(40, 48)["ring_with_hole"]
    prob = MaskedPoisson(mask)
    prob.reuse = True
    cap = prob.capacitance
    assert (cap._hodlr is not None) == (path == "hodlr_cg")
    rng = np.random.default_rng(21)
    data = rng.random((cap.nd, 3))
    target = rng.random((40, 48, 3)).astype(np.float32)
    div = rng.standard_normal((40, 48, 3)).astype(np.float32)
    first = [cap.harmonic_crop(data, refine=False), cap.solve_div_crop(target, div, refine=False)]
    for _ in range(3):
        again = [cap.harmonic_crop(data, refine=False), cap.solve_div_crop(target, div, refine=False)]
        for a, b in zip(first, again, strict=True):
            assert np.array_equal(a[mask], b[mask])
