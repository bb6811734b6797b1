"""Fixtures for the bias-free model tests: a tiny trained model on synthetic images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


def _write_images(d: Path, n: int = 6, size: int = 32, channels: int = 1) -> Path:
    from PIL import Image

    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        x = np.cumsum(np.cumsum(rng.normal(size=(size, size, channels)), 0), 1)
        x = (x - x.min()) / (x.max() - x.min())
        a = (x * 255).astype(np.uint8)
        Image.fromarray(a[:, :, 0] if channels == 1 else a).save(d / f"im{i}.png")
    return d


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_images(tmp_path_factory.mktemp("gray_imgs"))


@pytest.fixture(scope="session")
def color_image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_images(tmp_path_factory.mktemp("color_imgs"), channels=3)


def _tiny_train(data: Path, out: Path, channels: int, steps: int = 8, **kw):
    from restorelab.jobs import run_job
    from restorelab.models.train import TrainConfig, train_job

    cfg = TrainConfig(
        data=[str(data)],
        out=str(out),
        channels=channels,
        arch=kw.pop("arch", "bfcnn"),
        depth=kw.pop("depth", 4),
        width=kw.pop("width", 8),
        steps=steps,
        batch=4,
        patch=16,
        val_every=kw.pop("val_every", 4),
        val_crop=32,
        device="cpu",
        seed=0,
        warmup=2,
        run_dir=str(out.parent / (out.stem + "_run")),
        **kw,
    )
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_job(train_job(cfg))
    finally:
        torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_gray_model(tmp_path_factory: pytest.TempPathFactory, image_dir: Path) -> Path:
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("m") / "gray.safetensors"
    _tiny_train(image_dir, out, 1, steps=4, depth=3, width=4)
    return out


@pytest.fixture(scope="session")
def tiny_color_model(tmp_path_factory: pytest.TempPathFactory, color_image_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("mc") / "color.safetensors"
    _tiny_train(color_image_dir, out, 3, steps=4, arch="bfunet", depth=2, width=4)
    return out
