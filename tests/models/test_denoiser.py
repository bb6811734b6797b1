"""The registered ``bfcnn`` denoiser and ``restorelab denoise --method bfcnn`` on files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from restorelab import denoise


def test_registered_and_blind(tiny_gray_model: Path, camera_small: np.ndarray) -> None:
    assert "bfcnn" in denoise.names()
    cls = denoise.get_class("bfcnn")
    assert cls.family == "learned" and cls.torch_native
    d = denoise.get("bfcnn", model=str(tiny_gray_model), device="cpu")
    y = camera_small + np.random.default_rng(0).normal(0, 25 / 255, camera_small.shape).astype(np.float32)
    y0 = y.copy()
    a, b = d(y, 25 / 255), d(y, 50 / 255)
    np.testing.assert_array_equal(a, b)  # blind: sigma is not used
    np.testing.assert_array_equal(y, y0)  # input untouched
    assert a.shape == y.shape and a.dtype == np.float32 and not np.array_equal(a, y)


def test_tensor_path_matches_numpy(tiny_gray_model: Path, camera_small: np.ndarray) -> None:
    """Batched tensor path, numpy path and residual against an independent reference: the
    network as trained (unfolded batch norms) run in float64, x̂ = y − f(y)."""
    from restorelab.models.weights import load_model

    d = denoise.get("bfcnn", model=str(tiny_gray_model), device="cpu")
    a, b = camera_small[:48, :48], camera_small[60:108, 40:88]  # two different images in one batch
    y = torch.from_numpy(np.stack([a, b])[:, None].copy())
    net, _ = load_model(tiny_gray_model, "cpu")
    with torch.no_grad():
        f_ref = net.double()(y.double())
    ref = (y.double() - f_ref).float()
    assert (ref - y).abs().mean() > 1e-3  # the network does change the image
    out = d.denoise_tensor(y, torch.tensor([0.1, 0.2]))
    assert out.shape == y.shape and out.dtype == y.dtype
    torch.testing.assert_close(out, ref, rtol=0, atol=2e-4)
    np.testing.assert_allclose(d(b, 0.2), ref[1, 0].numpy(), atol=2e-4)
    torch.testing.assert_close(d.residual(y), f_ref.float(), rtol=0, atol=2e-4)


def test_model_cache_and_homogeneity(tiny_gray_model: Path) -> None:
    from restorelab.denoise.bfcnn import load_denoiser_model

    f1 = load_denoiser_model(str(tiny_gray_model), "cpu")
    f2 = load_denoiser_model(str(tiny_gray_model), "cpu")
    assert f1 is f2 and f1.net.folded
    y = torch.rand(1, 1, 32, 32, dtype=torch.float32)
    torch.testing.assert_close(f1.residual(3.0 * y), 3.0 * f1.residual(y), rtol=1e-4, atol=1e-5)


def test_colour_and_gray_model_selection(
    tiny_gray_model: Path,
    tiny_color_model: Path,
    astronaut_small: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RESTORELAB_BFCNN_GRAY", str(tiny_gray_model))
    monkeypatch.setenv("RESTORELAB_BFCNN_COLOR", str(tiny_color_model))
    d = denoise.get("bfcnn", device="cpu")
    out = d(astronaut_small, 0.1)
    assert out.shape == astronaut_small.shape
    via_color = denoise.get("bfcnn", model=str(tiny_color_model), device="cpu")(astronaut_small, 0.1)
    np.testing.assert_array_equal(out, via_color)
    per_channel = denoise.get("bfcnn", model=str(tiny_gray_model), device="cpu")(astronaut_small, 0.1)
    assert not np.allclose(per_channel, out)
    rgba = np.concatenate([astronaut_small, np.ones_like(astronaut_small[:, :, :1])], axis=2)
    o4 = d(rgba, 0.1)
    np.testing.assert_array_equal(o4[:, :, 3], 1.0)


def test_missing_model_is_clear(tmp_path: Path) -> None:
    d = denoise.get("bfcnn", model=str(tmp_path / "none.safetensors"), device="cpu")
    with pytest.raises(FileNotFoundError, match="none.safetensors"):
        d(np.zeros((8, 8), np.float32), 0.1)


@pytest.mark.parametrize("ext,channels", [(".png", 1), (".tif", 3), (".npy", 1), (".npy", 3), (".png", 3)])
def test_cli_denoise_files(
    ext: str,
    channels: int,
    tiny_gray_model: Path,
    tiny_color_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from restorelab.cli import main
    from restorelab.io import load_image, save_image

    monkeypatch.setenv("RESTORELAB_BFCNN_GRAY", str(tiny_gray_model))
    monkeypatch.setenv("RESTORELAB_BFCNN_COLOR", str(tiny_color_model))
    rng = np.random.default_rng(1)
    shape = (40, 36) if channels == 1 else (40, 36, 3)
    x = np.clip(0.5 + 0.1 * rng.normal(size=shape), 0, 1).astype(np.float32)
    src = tmp_path / f"in{ext}"
    if ext == ".npy":
        np.save(src, x)
    else:
        save_image(src, x)
    dst = tmp_path / f"out{ext}"
    rc = main(
        ["denoise", str(src), str(dst), "--method", "bfcnn", "--sigma", "25", "--device", "cpu", "--quiet"]
    )
    assert rc == 0
    out = load_image(dst)
    assert out.shape == shape
    assert np.abs(out - load_image(src)).max() > 0
