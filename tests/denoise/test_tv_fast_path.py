"""The in-place Chambolle–Pock loop of restorelab.denoise.tv against a plain transcription."""

import math

import numpy as np
import pytest
import torch

from restorelab.denoise import _torchutil, tv
from restorelab.denoise._torchutil import div, grad, workspace
from restorelab.denoise.tv import default_huber, tv_iterations


def reference_cp(y, lam, alpha, coupled, iters, tau0=0.35, accelerate=True):
    """Chambolle & Pock (2011) Alg. 2 for Huber-ROF, written out with fresh tensors."""
    lam = torch.as_tensor(lam, dtype=y.dtype).reshape(-1, 1, 1, 1)
    alpha = torch.as_tensor(alpha, dtype=y.dtype).reshape(-1, 1, 1, 1)
    x, xb = y.clone(), y.clone()
    py, px = torch.zeros_like(y), torch.zeros_like(y)
    tau, sig = tau0, 1.0 / (8.0 * tau0)
    out = []
    for _ in range(iters):
        gy, gx = grad(xb)
        py, px = (py + sig * gy) / (1 + sig * alpha / lam), (px + sig * gx) / (1 + sig * alpha / lam)
        norm = (py * py + px * px).sum(1, keepdim=True) if coupled else py * py + px * px
        scale = torch.clamp(norm.sqrt() / lam, min=1.0)
        py, px = py / scale, px / scale
        xn = (x + tau * (y + div(py, px))) / (1 + tau)
        th = 1 / math.sqrt(1 + 2 * tau) if accelerate else 1.0
        if accelerate:
            tau, sig = tau * th, sig / th
        xb, x = xn + th * (xn - x), xn
        out.append(x)
    return out


CASES = [
    # (shape, lam, huber, coupled)
    ((1, 1, 23, 31), 0.08, 0.01, True),  # gray, scalar weights: the OpenCV |q| path on CPU
    ((1, 1, 23, 31), 0.08, 0.0, True),  # exact ROF
    ((2, 3, 17, 19), 0.1, 0.02, True),  # vectorial colour, |q| summed over channels (torch path)
    ((2, 3, 17, 19), [0.05, 0.12], [0.0, 0.01], False),  # per-image weights, channel by channel
    ((1, 3, 16, 16), [0.07], [0.01], False),  # one-element tensors, 3 planes
]


@pytest.mark.parametrize(("shape", "lam", "huber", "coupled"), CASES)
@pytest.mark.parametrize("accelerate", [True, False])
def test_every_iterate_equals_the_plain_algorithm(shape, lam, huber, coupled, accelerate):
    g = torch.Generator().manual_seed(3)
    y = torch.rand(*shape, generator=g, dtype=torch.float64)
    lam_arg = torch.tensor(lam, dtype=torch.float64) if isinstance(lam, list) else lam
    hub_arg = torch.tensor(huber, dtype=torch.float64) if isinstance(huber, list) else huber
    ref = reference_cp(y, lam, huber, coupled and shape[1] > 1, 25, accelerate=accelerate)
    got = [x.clone() for _it, x, _e, _g in tv_iterations(y, lam_arg, huber=hub_arg, coupled=coupled,
                                                         max_iter=25, tol=0, accelerate=accelerate)]
    assert len(got) == 25
    for k in (0, 1, 2, 9, 24):
        assert torch.allclose(got[k], ref[k], atol=1e-9), (k, float((got[k] - ref[k]).abs().max()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opencv_norm_and_torch_norm_give_the_same_iterates(monkeypatch, dtype):
    g = torch.Generator().manual_seed(4)
    y = torch.rand(2, 1, 29, 33, generator=g).to(dtype)
    kw = dict(huber=0.01, max_iter=20, tol=0, first_check=5, check_every=5)
    fast = [(x.clone(), e, gap) for _it, x, e, gap in tv_iterations(y, 0.09, **kw)]
    monkeypatch.setattr(tv, "_plane_norm", lambda: None)
    slow = [(x.clone(), e, gap) for _it, x, e, gap in tv_iterations(y, 0.09, **kw)]
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for (xf, ef, gf), (xs, es, gs) in zip(fast, slow, strict=True):
        assert torch.allclose(xf, xs, atol=tol)
        assert (ef is None) == (es is None)
        if ef is not None:
            assert torch.allclose(ef, es, rtol=1e-5) and torch.allclose(gf, gs, rtol=1e-3, atol=1e-3)


def test_gap_is_a_true_duality_gap_and_energy_matches_tv_energy():
    g = torch.Generator().manual_seed(5)
    y = torch.rand(1, 1, 40, 36, generator=g, dtype=torch.float64)
    lam, hub = 0.1, 0.02
    gaps = []
    for _it, x, e, gap in tv_iterations(y, lam, huber=hub, max_iter=30, tol=0, first_check=2, check_every=4):
        if e is not None:
            assert torch.allclose(e, tv.tv_energy(x, y, lam, hub), rtol=1e-12)
            gaps.append(float(gap))
    assert all(gp >= -1e-9 for gp in gaps)  # weak duality
    assert gaps[-1] < 0.05 * gaps[0]


def test_default_huber_law():
    s25 = 25 / 255
    assert default_huber(s25) == pytest.approx(0.1 * s25)
    assert default_huber(15 / 255) == pytest.approx(0.1 * 15 / 255)
    assert default_huber(50 / 255) == pytest.approx(0.1 * 50 / 255 * 0.5**0.75)
    assert default_huber(0.0) == 0.0


def test_workspace_keeps_two_recent_shapes_per_name():
    like = torch.zeros(1)
    ws = workspace("test-tv-ws")
    try:
        a = ws.get("buf", (3, 4), like)
        b = ws.get("buf", (4, 3), like)
        assert ws.get("buf", (3, 4), like) is a and ws.get("buf", (4, 3), like) is b
        c = ws.get("buf", (5, 5), like)  # a third shape drops the least recently used (3, 4)
        assert ws.get("buf", (4, 3), like) is b and ws.get("buf", (5, 5), like) is c
        assert ws.get("buf", (3, 4), like) is not a
        assert ws.get("buf", (3, 4), torch.zeros(1, dtype=torch.float64)).dtype == torch.float64
        # a second run while the set is taken gets fresh buffers
        other = workspace("test-tv-ws")
        assert other.get("buf", (4, 3), like) is not b
        other.release()
    finally:
        ws.release()
    again = workspace("test-tv-ws")
    try:
        assert again.get("buf", (3, 4), like).shape == (3, 4)
        big = (1, _torchutil.ONE_THREAD_NUMEL + 1)
        assert again.get("big", big, like) is not again.get("big", big, like)  # never cached
    finally:
        again.release()


def test_denoiser_output_is_a_fresh_array(camera_small):
    d = tv.TVDenoiser()
    y = (camera_small + np.random.default_rng(0).normal(0, 0.1, camera_small.shape)).astype(np.float32)
    a = d(y, 0.1)
    b = d(y[::-1].copy(), 0.1)
    assert not np.shares_memory(a, b)
    assert np.array_equal(a, d(y, 0.1))
