"""Known answers for the Jacobian, its spectrum, tr J and the ideal-denoiser report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch

from restorelab import denoise
from restorelab.analysis.ideal import ideal_report_job
from restorelab.analysis.jacobian import (
    adaptive_filter,
    basis_job,
    check_crop,
    check_size,
    crop_around,
    jacobian,
    jacobian_job,
    spectrum,
    trace_sweep_job,
)
from restorelab.denoise.base import Denoiser
from restorelab.jobs import Cancelled, CancelToken, run_job


# ------------------------------------------------------------------ independent references
def periodic_gaussian_kernel(n: int, std: float, truncate: float = 6.0) -> np.ndarray:
    """scipy.ndimage's sampled, normalised Gaussian (radius int(truncate·std + 0.5)) wrapped on n points."""
    r = int(truncate * std + 0.5)
    k = np.arange(-r, r + 1)
    w = np.exp(-0.5 * (k / std) ** 2)
    w /= w.sum()
    out = np.zeros(n)
    np.add.at(out, k % n, w)
    return out


def circulant(k: np.ndarray) -> np.ndarray:
    """C[i, j] = k[(i − j) mod n]: the matrix of circular convolution with k."""
    n = len(k)
    i = np.arange(n)
    return k[(i[:, None] - i[None, :]) % n]


def neumann_laplacian_1d(n: int) -> np.ndarray:
    """DᵀD for the forward difference D with nothing across the border (second differences, Neumann)."""
    D = np.zeros((n - 1, n))
    D[np.arange(n - 1), np.arange(n - 1)] = -1
    D[np.arange(n - 1), np.arange(1, n)] = 1
    return D.T @ D


class TinyNet(Denoiser):
    """A two-layer torch CNN wrapped as a learned denoiser; ``bias`` makes it affine (not homogeneous)."""

    name = "tinynet"
    family = "learned"
    torch_native = True

    def __init__(self, bias: bool, channels: int = 1) -> None:
        super().__init__(device="cpu")
        g = torch.Generator().manual_seed(3)
        self.c1 = torch.nn.Conv2d(channels, 8, 3, padding=1, bias=bias)
        self.c2 = torch.nn.Conv2d(8, channels, 3, padding=1, bias=bias)
        with torch.no_grad():
            for m in (self.c1, self.c2):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.3)
                if bias:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)

    def _denoise_tensor(self, y: Any, sigma: Any) -> Any:
        return y - self.c2(torch.relu(self.c1(y)))

    def _denoise(self, x: np.ndarray, sigma: float, p: Mapping[str, Any]) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
        with torch.no_grad():
            return self._denoise_tensor(t, sigma)[0].numpy().transpose(1, 2, 0)


# --------------------------------------------------------------------------- linear methods
def test_periodic_gaussian_jacobian_is_the_circulant_and_its_spectrum_the_transfer_function(rng):
    h, w, std = 12, 16, 1.1
    den = denoise.get("gaussian", std=std, boundary="wrap")
    y = rng.random((h, w))
    jac = jacobian(den, y, 0.1)
    assert jac.method == "exact-linear"
    ky, kx = periodic_gaussian_kernel(h, std), periodic_gaussian_kernel(w, std)
    C = np.kron(circulant(ky), circulant(kx))  # row-major (i, j) index i·w + j
    np.testing.assert_allclose(jac.matrix, C, atol=1e-6)
    transfer = np.real(np.fft.fft(ky))[:, None] * np.real(np.fft.fft(kx))[None, :]  # 2-D DFT of the kernel
    ev = spectrum(jac).eigenvalues
    np.testing.assert_allclose(ev, np.sort(transfer.ravel())[::-1], atol=1e-6)
    assert abs(jac.trace - transfer.sum()) < 1e-6
    # the adaptive filter at a pixel is the kernel centred there, wrapped around
    f = adaptive_filter(den, y, 0.1, (3, 14), (0, 0, h, w))
    ref = np.outer(np.roll(ky, 3), np.roll(kx, 14))
    np.testing.assert_allclose(f, ref, atol=1e-6)


def test_tikhonov_eigenvalues_are_one_over_one_plus_lambda_mu_of_the_neumann_laplacian(rng):
    h, w, lam = 10, 13, 2.5
    den = denoise.get("tikhonov", regularizer="smoothness", lam=lam)
    jac = jacobian(den, rng.random((h, w)), 0.1)
    assert jac.method == "exact-linear"
    L = np.kron(neumann_laplacian_1d(h), np.eye(w)) + np.kron(np.eye(h), neumann_laplacian_1d(w))
    mu = np.linalg.eigvalsh(L)
    expected = np.sort(1.0 / (1.0 + lam * mu))[::-1]
    np.testing.assert_allclose(spectrum(jac).eigenvalues, expected, atol=1e-6)
    np.testing.assert_allclose(jac.matrix, np.linalg.inv(np.eye(h * w) + lam * L), atol=1e-6)


def test_colour_jacobian_of_a_per_channel_filter_is_block_diagonal_with_the_gray_block(rng):
    den = denoise.get("gaussian", std=0.8, boundary="wrap")
    y = rng.random((6, 5, 3))
    jc = jacobian(den, y, 0.1)
    jg = jacobian(den, y[:, :, 0], 0.1)
    assert jc.matrix.shape == (90, 90)
    blocks = jc.matrix.reshape(30, 3, 30, 3)
    for a in range(3):
        for b in range(3):
            if a == b:
                np.testing.assert_allclose(blocks[:, a, :, b], jg.matrix, atol=1e-6)
            else:
                assert np.abs(blocks[:, a, :, b]).max() == 0


# ------------------------------------------------------------------------- learned models
def test_learned_model_satisfies_euler_identity_and_rows_match_the_vjp(camera_small):
    den = denoise.get("bfcnn", model="gray", device="cpu")
    x = camera_small[40:56, 40:56].astype(np.float64)
    y = x + 0.1 * np.random.default_rng(1).standard_normal(x.shape)
    jac = jacobian(den, y, 0.1)
    assert jac.method == "masked-linear"
    euler = np.linalg.norm(jac.matrix @ y.ravel() - jac.fy.ravel()) / np.linalg.norm(jac.fy)
    assert euler <= 1e-4
    # a row of J (one reverse-mode product) against the forward-mode columns
    np.testing.assert_allclose(adaptive_filter(den, y, 0.1, (5, 9), (0, 0, 16, 16)), jac.row(5, 9), atol=1e-5)


def test_colour_learned_model_satisfies_euler_identity(astronaut_small):
    den = denoise.get("bfcnn", model="color", device="cpu")
    x = astronaut_small[30:38, 30:38].astype(np.float64)
    y = x + 0.1 * np.random.default_rng(2).standard_normal(x.shape)
    jac = jacobian(den, y, 0.1)
    assert jac.matrix.shape == (192, 192)
    euler = np.linalg.norm(jac.matrix @ y.ravel() - jac.fy.ravel()) / np.linalg.norm(jac.fy)
    assert euler <= 1e-4


def test_report_flags_a_biased_network_and_not_its_bias_free_twin(rng):
    x = rng.random((8, 8)) * 0.5 + 0.25
    biased = run_job(ideal_report_job(TinyNet(bias=True), x, 0.1))
    free = run_job(ideal_report_job(TinyNet(bias=False), x, 0.1))
    assert "f(y)≠Jy" in biased.flags and "homogeneity" in biased.flags
    assert biased.euler > 1e-2
    assert "f(y)≠Jy" not in free.flags and "homogeneity" not in free.flags
    assert free.euler < 1e-5


def test_autograd_jacobian_agrees_with_finite_differences(rng):
    den = TinyNet(bias=True, channels=3)
    y = rng.random((5, 4, 3))
    ja = jacobian(den, y, 0.1)
    jf = jacobian(den, y, 0.1, method="finite-differences", fd_scheme="central")
    assert ja.method == "autograd" and jf.method == "finite-differences"
    # entries agree to float32 rounding / step, except where a step crosses a ReLU kink
    diff = np.abs(ja.matrix - jf.matrix)
    assert np.quantile(diff, 0.99) < 1e-3
    assert np.mean(diff < 1e-3) > 0.99


# ------------------------------------------------------------------------- jobs and inputs
def test_jacobian_job_reports_progress_and_cancels_between_batches(rng):
    den = denoise.get("gaussian", std=1.0)
    tok = CancelToken()
    seen = []

    def on(ev):
        seen.append(ev.step)
        tok.cancel()

    with pytest.raises(Cancelled):
        run_job(jacobian_job(den, rng.random((16, 16)), 0.1, batch=32), cancel=tok, on_progress=on)
    assert seen == [1]  # one batch of 32 columns out of 8


def test_size_and_crop_limits():
    assert check_size((64, 64, 1)) == 4096
    assert check_size((40, 40, 3)) == 4800
    with pytest.raises(ValueError, match="limit"):
        check_size((65, 65, 1))
    with pytest.raises(ValueError, match="limit"):
        check_size((41, 41, 3))
    assert check_crop((100, 80), (10, 20, 30, 40)) == (10, 20, 30, 40)
    with pytest.raises(ValueError, match="outside"):
        check_crop((100, 80), (90, 0, 16, 16))
    assert crop_around((100, 80), (50, 40), 32) == (34, 24, 32, 32)
    assert crop_around((100, 80), (2, 79), 32) == (0, 48, 32, 32)
    assert crop_around((20, 80), (10, 10), 32) == (0, 0, 20, 32)
    with pytest.raises(ValueError, match="outside the crop"):
        adaptive_filter(denoise.get("gaussian"), np.zeros((32, 32)), 0.1, (20, 20), (0, 0, 16, 16))


def test_basis_job_returns_unit_eigenvectors_as_images(rng):
    den = denoise.get("gaussian", std=1.0, boundary="wrap")
    res = run_job(basis_job(den, rng.random((8, 8)), 0.1, k=5))
    assert res.basis.shape == (5, 8, 8)
    np.testing.assert_allclose(np.linalg.norm(res.basis.reshape(5, -1), axis=1), 1.0, atol=1e-9)
    # the top eigenvector of a periodic low-pass filter is the constant image (DC, eigenvalue 1)
    np.testing.assert_allclose(res.basis[0], np.full((8, 8), 1 / 8), atol=1e-6)
    assert abs(res.eigenvalues[0] - 1.0) < 1e-6


def test_trace_falls_with_sigma_and_hutchinson_is_within_its_error(rng):
    den = denoise.get("heat")  # t(σ) grows with σ: more smoothing, fewer directions kept
    x = rng.random((10, 10))
    sweep = run_job(trace_sweep_job(den, x, [5 / 255, 25 / 255, 50 / 255]))
    assert np.all(np.diff(sweep.traces) < 0)
    jac = jacobian(den, x + 25 / 255 * np.random.default_rng(0).standard_normal(x.shape), 25 / 255)
    off = jac.matrix - np.diag(np.diag(jac.matrix))
    probes = 200
    se = np.sqrt(2 * np.sum(((off + off.T) / 2) ** 2) / probes)
    est = run_job(trace_sweep_job(den, x, [25 / 255], probes=probes)).traces[0]
    assert abs(est - sweep.traces[1]) < 4 * se


def test_spectrum_on_a_torch_device_matches_lapack_and_its_eigenvectors_diagonalise_S(rng):
    # the device path is what a GPU uses for the 64×64 basis; on the CPU it must give LAPACK's answer
    J = rng.standard_normal((40, 40))
    ref = spectrum(J)
    got = spectrum(J, device="cpu")
    np.testing.assert_allclose(got.eigenvalues, ref.eigenvalues, atol=1e-10)
    assert np.all(np.diff(got.eigenvalues) <= 0)
    S = 0.5 * (J + J.T)
    V = got.eigenvectors
    np.testing.assert_allclose(V.T @ S @ V, np.diag(got.eigenvalues), atol=1e-9)
    assert abs(got.asymmetry - ref.asymmetry) < 1e-12
