"""Total variation (ROF) by Chambolle–Pock (restorelab.denoise.tv)."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio
from skimage.restoration import denoise_tv_chambolle

from restorelab import denoise
from restorelab.denoise._torchutil import div, grad
from restorelab.denoise.tv import tv_denoise, tv_energy, tv_iterations
from restorelab.jobs import Cancelled, CancelToken


def noisy(x: np.ndarray, s: float, seed: int = 0) -> np.ndarray:
    return (x + np.random.default_rng(seed).normal(0, s / 255, x.shape)).astype(np.float32)


def as_batch(a: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None].contiguous()


def test_div_is_minus_the_adjoint_of_grad():
    g = torch.Generator().manual_seed(0)
    u = torch.rand(2, 3, 9, 13, generator=g, dtype=torch.float64)
    py, px = torch.rand(2, 2, 3, 9, 13, generator=g, dtype=torch.float64)
    gy, gx = grad(u)
    lhs = (gy * py + gx * px).sum()
    assert torch.allclose(lhs, -(u * div(py, px)).sum(), atol=1e-10)


@pytest.mark.parametrize("accelerate", [True, False])
@pytest.mark.parametrize("huber", [0.0, 0.01])
def test_energy_decreases_monotonically(camera_small, accelerate, huber):
    y = as_batch(noisy(camera_small[:40, :48], 25))
    lam = 0.08
    energies = []
    for _it, x, _e, _g in tv_iterations(y, lam, huber=huber, max_iter=80, tol=0, check_every=1,
                                        accelerate=accelerate):
        energies.append(float(tv_energy(x.double(), y.double(), lam, huber)))
    e = np.array(energies)
    assert len(e) == 80
    assert np.all(np.diff(e) <= 1e-9 * e[0]), np.diff(e).max()
    assert e[-1] < 0.75 * float(tv_energy(y.double(), y.double(), lam, huber))  # it really moved


def test_converges_to_the_rof_minimiser_of_an_independent_solver(camera_small):
    """Exact ROF (huber=0) reaches the same minimiser as Chambolle's 2004 projection (skimage)."""
    y = noisy(camera_small[:32, :32], 25).astype(np.float64)
    lam = 0.08
    *_, (it, x, energy, gap) = tv_iterations(as_batch(y), lam, max_iter=4000, tol=1e-7, check_every=10)
    assert it < 4000  # stopped by the duality gap: ≤ 1e-7 λ² per pixel
    assert 0 <= float(gap) <= 1e-7 * lam**2 * y.size
    ref = denoise_tv_chambolle(y, weight=lam, eps=1e-12, max_num_iter=4000)
    assert np.abs(x[0, 0].numpy() - ref).max() < 1e-3  # vs ~3.5e-2 for λ = 0.09


def test_batch_with_per_image_lambda_equals_single_solves():
    g = torch.Generator().manual_seed(1)
    y = torch.rand(3, 3, 20, 24, generator=g)
    lam = torch.tensor([0.05, 0.1, 0.2])
    hub = torch.tensor([0.0, 0.01, 0.02])
    out = tv_denoise(y, lam, huber=hub, max_iter=200, tol=1e-12)
    for i in range(3):
        one = tv_denoise(y[i : i + 1], float(lam[i]), huber=float(hub[i]), max_iter=200, tol=1e-12)
        assert torch.allclose(out[i : i + 1], one, atol=1e-5)


def test_gray_colour_and_torch_inputs(camera_small, astronaut_small):
    d = denoise.get("tv", device="cpu")
    s = 25 / 255
    g = d(noisy(camera_small, 25), s)
    assert isinstance(g, np.ndarray) and g.shape == camera_small.shape and g.dtype == np.float32
    yc = noisy(astronaut_small, 25)
    c = d(yc, s)
    assert c.shape == astronaut_small.shape
    # vectorial TV couples the channels: different from channel-by-channel TV
    c_sep = denoise.get("tv", device="cpu", color="channels")(yc, s)
    assert np.abs(c - c_sep).max() > 1e-3
    one = denoise.get("tv", device="cpu", color="channels")(yc[:, :, 0], s)
    np.testing.assert_allclose(c_sep[:, :, 0], one, atol=1e-5)
    # torch (C, H, W) in → torch out, same values as numpy
    t = torch.from_numpy(yc).permute(2, 0, 1).contiguous()
    tout = d(t, s)
    assert isinstance(tout, torch.Tensor) and tout.shape == t.shape
    np.testing.assert_allclose(tout.permute(1, 2, 0).numpy(), c, atol=1e-5)
    # batched tensor path, one σ per image (σ = 0 returns the input)
    batch = torch.stack([t, t])
    bout = d.denoise_tensor(batch, torch.tensor([s, 0.0]))
    assert isinstance(bout, torch.Tensor) and bout.shape == batch.shape
    assert torch.allclose(bout[0], tout, atol=1e-4)
    assert torch.equal(bout[1], batch[1])
    assert np.array_equal(yc, noisy(astronaut_small, 25))  # input untouched


@pytest.mark.parametrize("s", [15, 25, 50])
def test_vectorial_colour_tv_beats_channel_by_channel_tv(astronaut_small, s):
    y = noisy(astronaut_small, s, seed=s)
    p_vec = peak_signal_noise_ratio(astronaut_small, denoise.get("tv")(y, s / 255), data_range=1)
    p_sep = peak_signal_noise_ratio(astronaut_small, denoise.get("tv", color="channels")(y, s / 255),
                                    data_range=1)
    assert p_vec > p_sep + 0.3, (p_vec, p_sep)


@pytest.mark.parametrize("s", [15, 25, 50])
def test_defaults_beat_the_noisy_input(camera_small, s):
    y = noisy(camera_small, s, seed=s)
    x_hat = denoise.get("tv", device="cpu")(y, s / 255)
    p_noisy = peak_signal_noise_ratio(camera_small, y, data_range=1)
    p_hat = peak_signal_noise_ratio(camera_small, x_hat, data_range=1)
    assert p_hat > p_noisy + 3.0, (p_noisy, p_hat)


def test_job_reports_energy_and_cancels(camera_small):
    d = denoise.get("tv", device="cpu", tol=1e-8, max_iter=30)
    y = noisy(camera_small, 25)
    events = []
    d(y, 25 / 255, on_progress=events.append)
    assert events[-1].step == 30
    energies = [ev.data["energy"] for ev in events if "energy" in ev.data]
    assert len(energies) >= 4 and all(b <= a for a, b in zip(energies, energies[1:], strict=False))
    token = CancelToken()
    seen = []

    def stop(ev):
        seen.append(ev.step)
        if ev.step >= 3:
            token.cancel()

    with pytest.raises(Cancelled):
        d(y, 25 / 255, cancel=token, on_progress=stop)
    assert max(seen) == 3


def test_bad_inputs():
    with pytest.raises(ValueError):
        tv_denoise(torch.zeros(4, 4), 0.1)
    with pytest.raises(ValueError):
        tv_denoise(torch.full((1, 1, 4, 4), float("nan")), 0.1)
    with pytest.raises(ValueError):
        tv_denoise(torch.zeros(1, 1, 4, 4), -0.1)
    with pytest.raises(ValueError):
        denoise.get("tv")(np.zeros((4, 4)), -1.0)
