"""The masked-linear Jacobian of the bias-free networks equals the autograd one, and is refused when it
should be."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from restorelab import denoise
from restorelab.analysis.jacobian import jacobian, piecewise_linear_net
from restorelab.models.nets import build_model

#: the module (``restorelab.analysis.jacobian`` the attribute is the function of that name)
jmod = importlib.import_module("restorelab.analysis.jacobian")


@pytest.mark.parametrize(
    ("model", "shape"),
    [
        ("gray", (16, 16)),  # the shipped gray BF-UNet
        ("gray", (12, 10)),  # not a multiple of 8: the network pads (reflect) and crops inside
        ("color", (8, 8, 3)),  # colour model on colour
        ("gray", (8, 8, 3)),  # gray model channel by channel on colour
        ("color", (8, 8)),  # colour model on gray: replicate, average
    ],
)
def test_masked_linear_jacobian_equals_autograd_and_satisfies_euler(model, shape, rng):
    den = denoise.get("bfcnn", model=model, device="cpu")
    y = np.clip(rng.random(shape) * 0.6 + 0.2 + 0.1 * rng.standard_normal(shape), 0, 1)
    jm = jacobian(den, y, 0.1)
    ja = jacobian(den, y, 0.1, method="autograd")
    assert jm.method == "masked-linear" and ja.method == "autograd"
    assert np.abs(ja.matrix).max() > 0.1  # a real Jacobian, not zeros on both sides
    assert np.abs(jm.matrix - ja.matrix).max() <= 1e-5
    np.testing.assert_allclose(jm.fy, ja.fy, atol=1e-6)
    # f(y) = J y (Euler's identity for the homogeneous network) and f(y) is the denoiser's output
    np.testing.assert_allclose(jm.matrix @ y.ravel(), jm.fy.ravel(), atol=1e-5)
    direct = den(y.astype(np.float32), 0.1)
    np.testing.assert_allclose(jm.fy, np.asarray(direct).reshape(jm.fy.shape), atol=1e-5)


def test_batch_size_does_not_change_the_masked_linear_jacobian(rng):
    den = denoise.get("bfcnn", model="gray", device="cpu")
    y = rng.random((8, 8))
    a = jacobian(den, y, 0.1, batch=5)
    b = jacobian(den, y, 0.1)
    assert a.method == b.method == "masked-linear"
    np.testing.assert_allclose(a.matrix, b.matrix, atol=1e-6)


def test_piecewise_linear_net_accepts_only_bias_free_relu_networks():
    net = build_model("bfcnn", 1, depth=3, width=4).eval()
    assert piecewise_linear_net(net)
    assert piecewise_linear_net(build_model("bfunet", 1, depth=2, width=4).eval())
    assert not piecewise_linear_net(build_model("bfcnn", 1, depth=3, width=4).train())
    biased = build_model("bfcnn", 1, depth=3, width=4).eval()
    biased.layers[0].conv.bias = nn.Parameter(torch.zeros(4))
    assert not piecewise_linear_net(biased)
    other = build_model("bfcnn", 1, depth=3, width=4).eval()
    other.layers.append(nn.Tanh())
    assert not piecewise_linear_net(other)


def test_a_network_failing_eulers_identity_falls_back_to_autograd(monkeypatch, rng):
    """A bias makes the masked network affine: the check J y = f(y) refuses it and autograd runs."""
    net = build_model("bfcnn", 1, depth=3, width=4).eval()
    net.layers[0].conv.bias = nn.Parameter(torch.full((4,), 0.3))
    for p in net.parameters():
        p.requires_grad_(False)
    fake = SimpleNamespace(net=net, channels=1, device=torch.device("cpu"))
    monkeypatch.setattr(jmod, "_bf_network", lambda den, c: fake)
    monkeypatch.setattr(jmod, "piecewise_linear_net", lambda net: True)
    den = denoise.get("bfcnn", model="gray", device="cpu")
    y = rng.random((6, 6))
    jac = jacobian(den, y, 0.1)
    assert jac.method == "autograd" and "refused" in jac.detail
    ref = torch.func.jacrev(lambda t: t - net(t))(torch.from_numpy(y.astype(np.float32))[None, None])
    np.testing.assert_allclose(jac.matrix, ref.reshape(36, 36).double().numpy(), atol=1e-6)
