"""Bias-free networks: homogeneity, frozen eval statistics, folding, tiling."""

from __future__ import annotations

import pytest
import torch

from restorelab.models.infer import FastDenoiser, fold_model
from restorelab.models.nets import BFBatchNorm2d, build_model


def _trained_stats(net: torch.nn.Module, channels: int) -> torch.nn.Module:
    """Give the running statistics non-trivial values (a few training-mode passes)."""
    g = torch.Generator().manual_seed(1)
    net.train()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, BFBatchNorm2d):
                m.gain.mul_(0.5 + torch.rand(m.gain.shape, generator=g))
        for _ in range(3):
            net(torch.rand(2, channels, 24, 24, generator=g))
    return net.eval()


@pytest.mark.parametrize("arch,depth,width,channels", [("bfcnn", 6, 8, 1), ("bfunet", 3, 4, 3)])
def test_positive_homogeneity(arch: str, depth: int, width: int, channels: int) -> None:
    torch.manual_seed(0)
    net = _trained_stats(build_model(arch, channels, depth, width), channels)
    y = torch.rand(2, channels, 30, 26, dtype=torch.float64)
    net = net.double()
    with torch.no_grad():
        f = net(y)
        assert f.abs().max() > 1e-3
        for a in (0.01, 0.37, 3.0, 250.0):
            torch.testing.assert_close(net(a * y), a * f, rtol=1e-10, atol=1e-12 * a)
    # not homogeneous for negative scalings (ReLU) -> the test above can fail
    with torch.no_grad():
        assert not torch.allclose(net(-y), -f, atol=1e-6)


def test_no_bias_parameters() -> None:
    for arch in ("bfcnn", "bfunet"):
        net = build_model(arch, 1, 3, 4)
        names = [n for n, _ in net.named_parameters()]
        assert not any("bias" in n for n in names)
        assert not any(isinstance(m, torch.nn.Conv2d) and m.bias is not None for m in net.modules())


def test_eval_mode_never_updates_running_stats() -> None:
    net = _trained_stats(build_model("bfcnn", 1, 5, 8), 1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        for s in (0.1, 10.0):
            net(s * torch.rand(3, 1, 20, 20))
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    net.train()
    with torch.no_grad():
        net(5 * torch.rand(3, 1, 20, 20))
    assert any(not torch.equal(v, before[k]) for k, v in net.state_dict().items() if "running_sd" in k)


@pytest.mark.parametrize("arch", ["bfcnn", "bfunet"])
def test_folded_equals_unfolded(arch: str) -> None:
    torch.manual_seed(0)
    net = _trained_stats(build_model(arch, 1, 4 if arch == "bfcnn" else 3, 8), 1)
    folded = fold_model(net)
    assert folded.folded and not net.folded
    y = torch.rand(2, 1, 36, 28)
    with torch.no_grad():
        torch.testing.assert_close(folded(y), net(y), rtol=0, atol=1e-5)


@pytest.mark.parametrize("arch,depth,size", [("bfcnn", 4, (45, 39)), ("bfunet", 2, (54, 61))])
def test_tiled_equals_whole(arch: str, depth: int, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = _trained_stats(build_model(arch, 1, depth, 4), 1)
    whole = FastDenoiser(net, "cpu", precision="fp32")
    tiled = FastDenoiser(net, "cpu", precision="fp32", tile=8)
    assert tiled.overlap >= net.receptive_radius()
    y = torch.rand(1, 1, *size)
    a, b = whole.residual(y), tiled.residual(y)
    assert a.abs().max() > 1e-3
    torch.testing.assert_close(b, a, rtol=0, atol=1e-4)
    # too little overlap is visibly wrong -> the check above is meaningful
    bad = FastDenoiser(net, "cpu", precision="fp32", tile=8, overlap=1)
    assert (bad.residual(y) - a).abs().max() > 1e-4


def test_fast_denoiser_dtype_and_shape_checks() -> None:
    net = build_model("bfcnn", 1, 3, 4).eval()
    fast = FastDenoiser(net, "cpu")
    y = torch.rand(1, 1, 10, 10, dtype=torch.float64)
    out = fast.denoise(y)
    assert out.dtype == torch.float64 and out.shape == y.shape
    with pytest.raises(ValueError):
        fast.residual(torch.rand(1, 3, 10, 10))
    with pytest.raises(ValueError):
        FastDenoiser(net, "cpu", precision="fp16")


def test_bad_arch() -> None:
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("resnet")
    with pytest.raises(ValueError):
        build_model("bfcnn", channels=2)
