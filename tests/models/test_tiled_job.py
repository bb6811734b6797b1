"""The one tiler, :func:`restorelab.models.infer.tiled_job`: exactness, progress, cancel."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from restorelab.jobs import Cancelled, CancelToken, run_job
from restorelab.models.infer import FastDenoiser, tile_grid, tiled_job
from restorelab.models.nets import build_model


def _net(arch: str, channels: int, depth: int) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_model(arch, channels, depth, 4).eval()
    with torch.no_grad():
        for prm in net.parameters():
            prm.mul_(1.5)
    return net


@pytest.mark.parametrize("arch,depth,size", [("bfcnn", 4, (61, 47)), ("bfunet", 2, (53, 70))])
def test_tiled_equals_whole_image(arch: str, depth: int, size: tuple[int, int]) -> None:
    net = _net(arch, 3, depth)
    y = torch.rand(1, 3, *size)
    with torch.no_grad():
        whole = net(y)
    assert whole.abs().max() > 1e-3
    r, m = net.receptive_radius(), int(getattr(net, "multiple", 1))
    job = tiled_job(lambda t: net(t).detach(), y, tile=16, overlap=r, multiple=m)
    events = []
    out = run_job(job, on_progress=events.append)
    torch.testing.assert_close(out, whole, rtol=0, atol=1e-5)
    # one event per tile, counted over the grid of the (padded) image
    hp, wp = (math.ceil(s / m) * m for s in size)
    n = len(tile_grid(hp, wp, math.ceil(16 / m) * m))
    assert [e.step for e in events] == list(range(1, n + 1)) and all(e.total == n for e in events)
    assert n >= 9
    # too little context is visibly wrong, so the comparison above can fail
    bad = run_job(tiled_job(lambda t: net(t).detach(), y, tile=16, overlap=0, multiple=m))
    assert (bad - whole).abs().max() > 1e-4


def test_tiled_job_channel_change_and_noncontiguous_view() -> None:
    """fn may change the channel count; x may be a permuted (H, W, C) array."""
    hwc = np.random.default_rng(0).random((40, 50, 3), dtype=np.float32)
    view = torch.from_numpy(hwc).permute(2, 0, 1)[None]
    conv = torch.nn.Conv2d(3, 2, 5, padding=2, bias=False)

    def fn(t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return conv(t)

    out = run_job(tiled_job(fn, view, tile=12, overlap=2))
    torch.testing.assert_close(out, fn(view.contiguous()), rtol=0, atol=1e-5)
    assert out.shape == (1, 2, 40, 50)


def test_cancel_between_tiles() -> None:
    calls: list[int] = []
    token = CancelToken()

    def fn(t: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return t

    def on(ev) -> None:  # noqa: ANN001
        if ev.step == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        run_job(tiled_job(fn, torch.rand(1, 1, 64, 64), tile=8, overlap=2), cancel=token, on_progress=on)
    assert len(calls) == 3  # 64 tiles in the grid; none ran after the cancel


def test_fast_denoiser_residual_uses_tiles() -> None:
    net = _net("bfcnn", 1, 4)
    fast = FastDenoiser(net, "cpu", precision="fp32", tile=16)
    y = torch.rand(1, 1, 50, 41)
    events = list(fast.residual_job(y))
    assert len(events) == len(tile_grid(50, 41, 16))
    whole = FastDenoiser(net, "cpu", precision="fp32").residual(y)
    torch.testing.assert_close(fast.residual(y), whole, rtol=0, atol=1e-5)


def test_bfcnn_job_reports_tiles_and_matches_whole(tiny_color_model: Path) -> None:
    from restorelab import denoise

    rng = np.random.default_rng(1)
    y = rng.random((70, 90, 3), dtype=np.float32)
    tiled = denoise.get("bfcnn", model=str(tiny_color_model), device="cpu", tile=24)
    whole = denoise.get("bfcnn", model=str(tiny_color_model), device="cpu", tile=4096)
    events: list = []
    a = tiled(y, 0.1, on_progress=events.append)
    b = whole(y, 0.1)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert np.abs(a - y).mean() > 1e-3
    assert len(events) == len(tile_grid(70, 90, 24)) and events[-1].fraction == 1.0
