"""Sparse coding: batched OMP is exact on sparse signals and equals a textbook OMP; denoising works."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio as psnr

from restorelab import denoise
from restorelab.denoise.sparse import _omp_block, auto_stride, ksvd_job, odct_dictionary, omp
from restorelab.jobs import Progress

SIGMA = 25 / 255




def _noisy(x: np.ndarray, seed: int = 1) -> np.ndarray:
    return (x + SIGMA * np.random.default_rng(seed).standard_normal(x.shape)).astype(np.float32)


def _random_dict(n: int, k: int, seed: int = 0) -> np.ndarray:
    D = np.random.default_rng(seed).standard_normal((n, k))
    return D / np.linalg.norm(D, axis=0)


def _dense(idx: np.ndarray, coef: np.ndarray, k: int) -> np.ndarray:
    g = np.zeros((idx.shape[0], k))
    np.add.at(g, (np.arange(idx.shape[0])[:, None], idx), coef)
    return g


def test_omp_recovers_exactly_sparse_signals() -> None:
    rng = np.random.default_rng(1)
    D = _random_dict(64, 128)
    N = 300
    gamma = np.zeros((N, 128))
    for i in range(N):
        support = rng.choice(128, 3, replace=False)
        gamma[i, support] = rng.choice([-1.0, 1.0], 3) * (0.5 + rng.random(3))
    P = gamma @ D.T
    idx, coef, nnz = omp(D, P, eps2=1e-20, max_atoms=10)
    assert (nnz == 3).all()  # stops as soon as the residual vanishes
    est = _dense(idx, coef, 128)
    np.testing.assert_array_equal(est != 0, gamma != 0)  # exact support
    np.testing.assert_allclose(est, gamma, atol=1e-6)


def _omp_reference(D: np.ndarray, p: np.ndarray, eps2: float, T: int) -> tuple[list[int], np.ndarray]:
    """Textbook OMP (Pati et al. 1993) for one signal."""
    support: list[int] = []
    r = p.copy()
    g = np.zeros(0)
    while r @ r > eps2 and len(support) < T:
        c = np.abs(D.T @ r)
        c[support] = -1
        support.append(int(np.argmax(c)))
        g, *_ = np.linalg.lstsq(D[:, support], p, rcond=None)
        r = p - D[:, support] @ g
    return support, g


def test_batched_omp_equals_textbook_omp_with_error_stopping_rule() -> None:
    rng = np.random.default_rng(2)
    D = odct_dictionary(8, 256)
    P = rng.standard_normal((40, 64)) * rng.random((40, 1)) * 0.5
    eps2 = 64 * (1.15 * 0.1) ** 2
    idx, coef, nnz = omp(D, P, eps2=eps2, max_atoms=20)
    for i in range(40):
        support, g = _omp_reference(D, P[i], eps2, 20)
        assert nnz[i] == len(support)
        assert list(idx[i, : nnz[i]]) == support
        np.testing.assert_allclose(coef[i, : nnz[i]], g, atol=1e-8)
        res = P[i] - D[:, support] @ g if support else P[i]
        assert res @ res <= eps2 or nnz[i] == 20


def test_odct_dictionary() -> None:
    D = odct_dictionary(8, 256)
    assert D.shape == (64, 256)
    np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose(D[:, 0], 1 / 8, atol=1e-12)
    np.testing.assert_allclose(D[:, 1:].sum(0), 0.0, atol=1e-10)  # other atoms have zero mean
    assert auto_stride((128, 128)) == 1 and auto_stride((321, 481)) == 2


def test_denoising_beats_noisy_input_and_keeps_input(camera_small: np.ndarray) -> None:
    x = camera_small
    y = _noisy(x)
    y0 = y.copy()
    out = denoise.get("sparse")(y, SIGMA)
    assert out.shape == x.shape and out.dtype == np.float32
    assert psnr(x, out, data_range=1.0) > psnr(x, y, data_range=1.0) + 6.0
    np.testing.assert_array_equal(y, y0)
    # coarser patch grids are faster and a little worse
    out3 = denoise.get("sparse", stride=3)(y, SIGMA)
    assert psnr(x, out, data_range=1.0) > psnr(x, out3, data_range=1.0)


def test_colour(astronaut_small: np.ndarray) -> None:
    x = astronaut_small
    y = _noisy(x, seed=2)
    p_opp = psnr(x, denoise.get("sparse", stride=2)(y, SIGMA), data_range=1.0)
    p_rgb = psnr(x, denoise.get("sparse", stride=2, color="rgb")(y, SIGMA), data_range=1.0)
    assert p_opp > psnr(x, y, data_range=1.0) + 6.0
    assert p_opp > p_rgb


def test_ksvd_learns_a_sparser_dictionary_and_reports_progress(camera_small: np.ndarray) -> None:
    y = torch.from_numpy(_noisy(camera_small))
    P = torch.nn.functional.unfold(y[None, None], 8, stride=3)[0].T.contiguous()
    P = P - P.mean(1, keepdim=True)
    D0 = torch.from_numpy(odct_dictionary(8, 256).astype(np.float32))
    eps2 = 64 * (1.15 * SIGMA) ** 2
    events: list[Progress] = []
    job = ksvd_job(D0, P, eps2, 2, 16)
    while True:
        try:
            events.append(next(job))
        except StopIteration as stop:
            D = stop.value
            break
    assert [e.step for e in events] == [1, 2]
    torch.testing.assert_close(D.norm(dim=0), torch.ones(256), atol=1e-5, rtol=0)
    e2 = torch.full((P.shape[0],), eps2)
    nnz0 = _omp_block(D0, D0.T @ D0, P, e2, 16)[2].float().mean()
    nnz1 = _omp_block(D, D.T @ D, P, e2, 16)[2].float().mean()
    assert nnz1 < 0.9 * nnz0  # the learned dictionary represents the patches with fewer atoms


def test_ksvd_denoiser_runs_as_cancellable_job(camera_small: np.ndarray) -> None:
    x = camera_small[:64, :64]
    y = _noisy(x)
    events: list[Progress] = []
    out = denoise.get("sparse", ksvd_iters=2, ksvd_patches=2000)(y, SIGMA, on_progress=events.append)
    assert any("K-SVD" in e.message for e in events)
    assert psnr(x, out, data_range=1.0) > psnr(x, y, data_range=1.0) + 5


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        omp(np.eye(4), np.ones((3, 5)))
    with pytest.raises(ValueError):
        denoise.get("sparse")(np.zeros((4, 4, 2), np.float32), SIGMA)
