"""The contract every registered denoiser keeps: one image policy, declared parameters, a σ range,
a declared cost.

Image policy (``restorelab.image``): the output dtype follows the input dtype, so a uint8 image
comes back as uint8 (the float result rounded to the nearest level by ``from_float_image``) and a
float image as float on the [0, 1] scale. The uint8 result must therefore be the float result of
``x / 255`` rounded, to within one level (the two paths may round a value lying on a .5 boundary
differently).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import data

from restorelab import denoise
from restorelab.denoise.base import preview_ok
from restorelab.image import from_float_image
from restorelab.params import SIGMA_MAX, ParamError, check_sigma

#: the cheapest settings of each method that still run its real code path
_CHEAP = {"nlm": {"search": 7}, "tv": {"max_iter": 20}, "sparse": {"atoms": 64, "stride": 2},
          "wavelet": {"levels": 2}, "perona_malik": {"iterations": 5}}

NAMES = denoise.names()


def _get(name: str) -> denoise.Denoiser:
    return denoise.get(name, device="cpu", **_CHEAP.get(name, {}))


def _noisy_uint8(channels: int) -> np.ndarray:
    x = data.astronaut()[100:124, 200:224].astype(np.float64)
    if channels == 1:
        x = x.mean(axis=2)
    y = x + np.random.default_rng(0).normal(0.0, 25.0, x.shape)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def test_registry_is_complete():
    # a family that fails to import must not silently leave the registry
    assert {"gaussian", "heat", "tikhonov", "tv", "perona_malik", "wavelet", "sparse", "nlm",
            "bfcnn"} <= set(NAMES)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", NAMES)
def test_uint8_input_is_denoised_like_its_float_scale(name, channels):
    y8 = _noisy_uint8(channels)
    d = _get(name)  # a missing weight file raises here or below: the test fails, as it should
    got = d(y8, 25 / 255)
    ref = d(y8.astype(np.float32) / 255, 25 / 255)
    assert got.dtype == np.uint8 and got.shape == y8.shape
    assert ref.dtype == np.float32
    diff = np.abs(got.astype(int) - from_float_image(ref, np.uint8).astype(int))
    assert diff.max() <= 1, (name, diff.max())
    # and it did denoise: the result is smoother than the input
    def roughness(a: np.ndarray) -> float:
        return float(np.abs(np.diff(a.astype(float), axis=0)).mean())

    assert roughness(got) < 0.8 * roughness(y8), name


def test_uint16_and_torch_follow_the_same_policy():
    y8 = _noisy_uint8(1)
    d = _get("tv")
    ref = d(y8.astype(np.float32) / 255, 25 / 255)
    y16 = (y8.astype(np.uint16) * 257)  # the same values on the 16-bit scale
    out16 = d(y16, 25 / 255)
    assert out16.dtype == np.uint16
    assert np.abs(out16.astype(int) - from_float_image(ref, np.uint16).astype(int)).max() <= 3
    t = torch.from_numpy(y8.astype(np.float32) / 255)[None]  # (C, H, W) float tensor in, tensor out
    out_t = d(t, 25 / 255)
    assert isinstance(out_t, torch.Tensor) and out_t.shape == t.shape and out_t.dtype == torch.float32
    np.testing.assert_allclose(out_t[0].numpy(), ref, atol=1e-5)


# ----------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_has_a_human_label(name):
    cls = denoise.get_class(name)
    assert cls.params, name
    for p in cls.params:
        assert p.label.strip(), (name, p.name)
        assert p.label.strip().lower() != p.name.replace("_", " ").lower(), (name, p.name, p.label)


def test_one_spelling_of_the_colour_option():
    spelled = {p.name for c in denoise.available() for p in c.params}
    assert "colour" not in spelled
    owners = [c.name for c in denoise.available() if any(p.name == "color" for p in c.params)]
    assert {"tv", "wavelet", "nlm", "sparse"} <= set(owners)
    # TV accepts it under that name and refuses the other spelling
    assert denoise.get("tv", color="channels").resolved(0.1)["color"] == "channels"
    with pytest.raises(ParamError, match="unknown"):
        denoise.get("tv", colour="channels")


def test_out_of_range_parameter_names_the_range_and_the_label():
    with pytest.raises(ValueError) as e:
        denoise.get("tv", lam=5000)
    msg = str(e.value)
    assert "lam = 5000 is out of range [0.0001, 10]" in msg
    assert denoise.get_class("tv").params[0].label in msg


# ----------------------------------------------------------------------------- σ range
def test_check_sigma():
    assert check_sigma(0) == 0.0 and check_sigma(25 / 255) == pytest.approx(25 / 255)
    assert check_sigma(SIGMA_MAX) == SIGMA_MAX == 1.0
    for bad in (5000 / 255, 1.0001, 1e9, -0.01, math.nan, math.inf, "abc", None):
        with pytest.raises(ValueError, match="sigma"):
            check_sigma(bad)
    with pytest.raises(ValueError, match=r"out of range \[0, 1\]"):
        check_sigma(1e9)


@pytest.mark.parametrize("name", NAMES)
def test_every_denoiser_refuses_sigma_outside_its_range(name):
    y = np.full((8, 8), 0.5, np.float32)
    d = _get(name)
    for bad in (1e9, 5000 / 255, 1.5, -0.1, math.nan):
        with pytest.raises(ValueError, match="sigma"):
            d(y, bad)
        with pytest.raises(ValueError, match="sigma"):
            next(d.job(y, bad))
    assert d(y, SIGMA_MAX).shape == y.shape  # the top of the range is accepted


# ----------------------------------------------------------------------------- declared cost
def test_declared_cost_tiers_order_cheap_before_expensive():
    cost = {c.name: c.cost_s_per_mp for c in denoise.available()}
    assert all(v > 0 for v in cost.values()), cost
    assert cost["gaussian"] < cost["tv"] < cost["sparse"]
    assert cost["heat"] < cost["nlm"] < cost["sparse"]


def test_estimate_seconds_and_preview_ok():
    g, s = _get("gaussian"), _get("sparse")
    e1 = s.estimate_seconds((256, 256, 3), "cpu")
    e2 = s.estimate_seconds((512, 512, 3), "cpu")
    assert e2 == pytest.approx(4 * e1)  # linear in the number of pixels
    assert s.estimate_seconds((256, 256), "cpu") == pytest.approx(e1 / 3)  # per channel of work
    assert g.estimate_seconds((256, 256, 3), "cpu") < e1
    assert preview_ok(g, (256, 256, 3))
    assert not preview_ok(s, (256, 256, 3))
    assert preview_ok(s, (256, 256, 3), budget_s=1e6)
    with pytest.raises(ValueError):
        s.estimate_seconds((0, 5), "cpu")
