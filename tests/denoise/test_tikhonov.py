"""Tikhonov regularisation in closed form (restorelab.denoise.tikhonov)."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import cg
from skimage.metrics import peak_signal_noise_ratio

from restorelab import denoise
from restorelab.denoise.tikhonov import tikhonov_solve


def forward_difference(n: int) -> sp.csr_matrix:
    """(n, n) forward difference with a zero last row (Neumann)."""
    d = sp.diags([-np.ones(n), np.ones(n - 1)], [0, 1], shape=(n, n)).tolil()
    d[n - 1, n - 1] = 0
    return d.tocsr()


def gradient_matrix(h: int, w: int) -> sp.csr_matrix:
    """Stacked (∂_y, ∂_x) acting on row-major flattened (h, w) images."""
    dy = sp.kron(forward_difference(h), sp.identity(w))
    dx = sp.kron(sp.identity(h), forward_difference(w))
    return sp.vstack([dy, dx]).tocsr()


def cg_solve(a, b):
    x, info = cg(a, b, rtol=1e-13, atol=0.0, maxiter=20000)
    assert info == 0
    return x


@pytest.mark.parametrize("regularizer,lam", [("smoothness", 3.0), ("laplacian", 0.7), ("energy", 0.4)])
def test_closed_form_equals_iterative_solve_of_the_same_energy(regularizer, lam):
    h, w = 13, 17
    rng = np.random.default_rng(0)
    y = rng.random((h, w))
    n = h * w
    g = gradient_matrix(h, w)
    lap = (g.T @ g).tocsr()
    reg = {"smoothness": lap, "laplacian": (lap.T @ lap).tocsr(), "energy": sp.identity(n)}[regularizer]
    a = (sp.identity(n) + lam * reg).tocsr()  # normal equations of ‖x − y‖² + λ‖Rx‖²
    x_cg = cg_solve(a, y.ravel()).reshape(h, w)
    x_dct = tikhonov_solve(y, lam, regularizer)
    np.testing.assert_allclose(x_dct, x_cg, atol=1e-5, rtol=0)
    # the closed form is the minimiser: the energy gradient vanishes
    assert np.abs(a @ x_dct.ravel() - y.ravel()).max() < 1e-10


def test_colour_channels_are_solved_independently(astronaut_small):
    x = astronaut_small
    out = denoise.get("tikhonov", lam=2.0)(x, 0.1)
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_allclose(out[:, :, 2], tikhonov_solve(x[:, :, 2], 2.0), atol=1e-5)
    # the smoothness filter keeps the mean (the DC eigenvalue is 0)
    np.testing.assert_allclose(out.mean(axis=(0, 1)), x.mean(axis=(0, 1)), atol=1e-5)


@pytest.mark.parametrize("regularizer", ["smoothness", "laplacian", "energy"])
@pytest.mark.parametrize("s", [15, 25, 50])
def test_defaults_beat_the_noisy_input(camera_small, regularizer, s):
    sigma = s / 255
    rng = np.random.default_rng(s)
    y = (camera_small + rng.normal(0, sigma, camera_small.shape)).astype(np.float32)
    x_hat = denoise.get("tikhonov", regularizer=regularizer)(y, sigma)
    p_noisy = peak_signal_noise_ratio(camera_small, y, data_range=1)
    p_hat = peak_signal_noise_ratio(camera_small, x_hat, data_range=1)
    margin = 0.05 if regularizer == "energy" else 2.0  # shrinkage toward 0 gains little
    assert p_hat > p_noisy + margin, (p_noisy, p_hat)


def test_bad_inputs():
    with pytest.raises(ValueError):
        tikhonov_solve(np.zeros((4, 4)), -1.0)
    with pytest.raises(ValueError):
        tikhonov_solve(np.zeros((4, 4)), 1.0, "tv")
    with pytest.raises(ValueError):
        tikhonov_solve(np.full((4, 4), np.inf), 1.0)
    with pytest.raises(TypeError):
        tikhonov_solve(np.zeros((4, 4), dtype=bool), 1.0)
