"""Non-local means: exact against a direct implementation, constants kept, quality vs scikit-image."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio as psnr

from restorelab import denoise
from restorelab.denoise.nlm import nlm_torch
from restorelab.jobs import Cancelled, CancelToken, run_job

SIGMA = 25 / 255




def _noisy(x: np.ndarray, seed: int = 1) -> np.ndarray:
    return (x + SIGMA * np.random.default_rng(seed).standard_normal(x.shape)).astype(np.float32)


def _nlm_direct(u: np.ndarray, sigma: float, h: float, f: int, r: int) -> np.ndarray:
    """Pixel-wise NL-means written pixel by pixel (IPOL weights, centre weight = max)."""
    H, W = u.shape
    pad = np.pad(u, r + f, mode="reflect")
    out = np.zeros_like(u)
    for i in range(H):
        for j in range(W):
            I, J = i + r + f, j + r + f
            P = pad[I - f : I + f + 1, J - f : J + f + 1]
            ws, vs = [], []
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    if dy == 0 and dx == 0:
                        continue
                    Q = pad[I + dy - f : I + dy + f + 1, J + dx - f : J + dx + f + 1]
                    d2 = ((P - Q) ** 2).mean()
                    ws.append(np.exp(-max(d2 - 2 * sigma**2, 0.0) / h**2))
                    vs.append(pad[I + dy, J + dx])
            ws.append(max(ws))
            vs.append(u[i, j])
            out[i, j] = np.dot(ws, vs) / np.sum(ws)
    return out


def test_torch_matches_direct_definition() -> None:
    u = np.random.default_rng(0).random((11, 13))
    ref = _nlm_direct(u, 0.1, 0.05, f=1, r=2)
    out = nlm_torch(torch.from_numpy(u)[None], 0.1, 0.05, patch=3, search=5, aggregate=False)[0].numpy()
    np.testing.assert_allclose(out, ref, atol=1e-10)


@pytest.mark.parametrize("aggregate", [True, False])
def test_constant_image_is_kept(aggregate: bool) -> None:
    x = np.full((40, 37, 3), 0.3, np.float32)
    out = denoise.get("nlm", backend="torch", aggregate=aggregate)(x, SIGMA)
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_beats_noisy_and_skimage(camera_small: np.ndarray) -> None:
    from skimage.restoration import denoise_nl_means

    x = camera_small
    y = _noisy(x)
    p_noisy = psnr(x, y, data_range=1.0)
    p_torch = psnr(x, denoise.get("nlm", backend="torch")(y, SIGMA), data_range=1.0)
    p_cv = psnr(x, denoise.get("nlm", backend="opencv")(y, SIGMA), data_range=1.0)
    # scikit-image with the same 5×5 patches, the best of 7×7 / 11×11 windows and h = 0.6σ / 0.8σ
    p_sk = max(
        psnr(x, denoise_nl_means(y, patch_size=5, patch_distance=d, h=k * SIGMA, sigma=SIGMA, fast_mode=True),
             data_range=1.0)
        for k in (0.6, 0.8)
        for d in (3, 5)
    )
    assert p_torch > p_noisy + 6.0
    assert p_cv > p_noisy + 4.0
    assert p_torch >= p_sk, (p_torch, p_sk)


def test_colour_and_opencv_depths(astronaut_small: np.ndarray) -> None:
    x = astronaut_small
    y = _noisy(x, seed=2)
    p_noisy = psnr(x, y, data_range=1.0)
    for kw in ({}, {"backend": "opencv"}, {"backend": "opencv", "opencv_depth": 16}):
        out = denoise.get("nlm", **kw)(y, SIGMA)
        assert out.shape == x.shape and out.dtype == np.float32
        assert psnr(x, out, data_range=1.0) > p_noisy + 3.0, kw
    # per-channel luminance/chrominance NLM beats joint RGB weights; the tensor path agrees
    d = denoise.get("nlm", device="cpu")
    opp = d(y, SIGMA)
    joint = denoise.get("nlm", color="joint")(y, SIGMA)
    assert psnr(x, opp, data_range=1.0) > psnr(x, joint, data_range=1.0) + 0.5
    t = d.denoise_tensor(torch.from_numpy(y).permute(2, 0, 1)[None], SIGMA)
    np.testing.assert_allclose(t[0].permute(1, 2, 0).numpy(), opp, atol=1e-5)


def test_job_is_cancellable_and_input_untouched(camera_small: np.ndarray) -> None:
    y = _noisy(camera_small)
    y0 = y.copy()
    d = denoise.get("nlm", backend="torch", search=11)  # 60 offset pairs: 4 chunks of 16
    events = []
    d(y, SIGMA, on_progress=events.append)
    assert len(events) >= 3 and events[-1].step == events[-1].total
    tok = CancelToken()

    def cancel_after_first(ev: object) -> None:
        tok.cancel()

    with pytest.raises(Cancelled):
        run_job(d.job(y, SIGMA), cancel=tok, on_progress=cancel_after_first)
    np.testing.assert_array_equal(y, y0)


def test_tensor_batch_path_and_bad_input(camera_small: np.ndarray) -> None:
    y = _noisy(camera_small[:48, :48])
    d = denoise.get("nlm", device="cpu")
    one = d(y, SIGMA)
    batch = d.denoise_tensor(torch.from_numpy(np.stack([y, y]))[:, None], SIGMA)
    assert batch.shape == (2, 1, 48, 48)
    np.testing.assert_allclose(batch[1, 0].numpy(), one, atol=1e-6)
    with pytest.raises(ValueError):
        d(np.full((8, 8), np.nan, np.float32), SIGMA)
    from restorelab.params import ParamError

    with pytest.raises(ParamError):
        denoise.get("nlm", backend="cuda-magic")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(camera_small: np.ndarray) -> None:
    y = _noisy(camera_small)
    cpu = denoise.get("nlm", device="cpu")(y, SIGMA)
    gpu = denoise.get("nlm", device="cuda")(y, SIGMA)
    np.testing.assert_allclose(gpu, cpu, atol=1e-5)
