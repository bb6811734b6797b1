"""`restorelab restore --indi` and `train --task indi`, in-process on temporary files with a tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from restorelab.cli import main
from restorelab.indi.net import build_indi
from restorelab.indi.restore import restore
from restorelab.indi.weights import load_indi, save_indi
from restorelab.io import load_image, save_image


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    net = build_indi(3, 2, 4)
    with torch.no_grad():
        net.out.conv.weight.normal_(0.0, 0.1)
    return save_indi(tmp_path / "tiny.safetensors", net, "jpeg", 0.01)


@pytest.fixture
def photo(tmp_path: Path, astronaut_small: np.ndarray) -> Path:
    p = tmp_path / "in.png"
    save_image(p, astronaut_small[:40, :44])
    return p


def test_restore_round_trip_with_trajectory(
    tmp_path: Path, tiny: Path, photo: Path, capsys: pytest.CaptureFixture
) -> None:
    out, traj = tmp_path / "out.png", tmp_path / "traj"
    rc = main(["restore", str(photo), str(out), "--indi", "jpeg", "--steps", "3", "--seed", "4",
               "--model", str(tiny), "--trajectory", str(traj), "-q"])
    assert rc == 0
    want = restore(load_image(photo), "jpeg", 3, seed=4, model=tiny, device="cpu").image
    got = load_image(out)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 0.5 / 255 + 1e-6  # the 8-bit output of the same restoration
    frames = sorted(traj.glob("in_t*.png"))
    assert [f.name for f in frames] == [f"in_t{k:03d}.png" for k in range(4)]
    np.testing.assert_allclose(load_image(frames[-1]), got, atol=1e-6)
    # the output exists now: refused before any work without --overwrite
    rc = main(["restore", str(photo), str(out), "--indi", "jpeg", "--steps", "3", "--model", str(tiny), "-q"])
    assert rc == 2 and "overwrite" in capsys.readouterr().err


def test_restore_batch_over_a_folder(tmp_path: Path, tiny: Path, astronaut_small: np.ndarray) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for k in range(2):
        save_image(src / f"im{k}.png", astronaut_small[k * 20 : k * 20 + 36, :36])
    dst = tmp_path / "dst"
    rc = main(["restore", str(src), str(dst), "--indi", "jpeg", "--steps", "2", "--model", str(tiny), "-q"])
    assert rc == 0
    for k in range(2):
        want = restore(load_image(src / f"im{k}.png"), "jpeg", 2, seed=k, model=tiny, device="cpu").image
        assert np.abs(load_image(dst / f"im{k}.png") - want).max() <= 0.5 / 255 + 1e-6


def test_restore_refuses_a_model_for_another_degradation(tmp_path: Path, tiny: Path, photo: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "o.png"
    rc = main(["restore", str(photo), str(out), "--indi", "blur", "--model", str(tiny), "-q"])
    assert rc == 2 and "restores 'jpeg', not 'blur'" in capsys.readouterr().err
    assert not out.exists()
    rc = main(["restore", str(photo), str(out), "--indi", "jpeg", "--steps", "0", "--model", str(tiny), "-q"])
    assert rc == 2 and "1" in capsys.readouterr().err and not out.exists()


def _tiny_train(tmp_path: Path, photo: np.ndarray, degradation: str, *extra: str) -> tuple[int, Path]:
    """Two steps of `restorelab train --task indi` on three shifted copies of ``photo``."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    for k in range(3):
        save_image(data / f"{k}.png", np.roll(photo, 17 * k, axis=1))
    out = tmp_path / "m.safetensors"
    rc = main(["train", "--task", "indi", "--degradation", degradation, "--data", str(data), "--steps", "2",
               "--batch", "2", "--patch", "16", "--depth", "2", "--width", "4", "--val-every", "2",
               "--val-crop", "16", "--recal-batches", "1", "--run-dir", str(tmp_path / "run"),
               "--out", str(out), "--device", "cpu", "--quiet", *extra])
    return rc, out


def test_train_task_indi_writes_a_loadable_model(tmp_path: Path, astronaut_small: np.ndarray) -> None:
    rc, out = _tiny_train(tmp_path, astronaut_small, "sr4")
    assert rc == 0
    net, md = load_indi(out, degradation="sr4")
    assert md["steps"] == "2" and "N1" in md["val_psnr"]
    rc = main(["train", "--task", "indi", "--degradation", "jpeg", "--data", str(tmp_path / "data"),
               "--steps", "4", "--batch", "2", "--patch", "16", "--depth", "2", "--width", "4",
               "--run-dir", str(tmp_path / "run"), "--resume", str(tmp_path / "run" / "last.ckpt"),
               "--out", str(tmp_path / "m2.safetensors"),
               "--device", "cpu", "--quiet"])
    assert rc == 2  # a checkpoint trained for sr4 does not resume a jpeg run


def test_train_task_indi_passes_ema_loss_eps_and_t_one(tmp_path: Path, astronaut_small: np.ndarray) -> None:
    rc, out = _tiny_train(tmp_path, astronaut_small, "jpeg", "--ema", "0", "--loss", "l1", "--t-one", "0.25")
    assert rc == 0
    _, md = load_indi(out, degradation="jpeg")
    assert float(md["ema"]) == 0.0 and md["loss"] == "l1" and float(md["eps"]) == 0.002
    assert float(md["t_one"]) == 0.25
    ck = torch.load(tmp_path / "run" / "last.ckpt", weights_only=False)
    for name, v in ck["model"].items():  # EMA decay 0: the shipped copy is the trained weights
        torch.testing.assert_close(ck["ema"][name], v, rtol=0, atol=0)
