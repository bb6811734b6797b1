"""Tiny CPU training runs: loss falls, the file loads, resume continues exactly, determinism."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from restorelab.jobs import run_job
from restorelab.models import load_model
from restorelab.models.train import TrainConfig, train_job


def _cfg(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        data=[str(data)],
        out=str(out),
        channels=1,
        arch="bfcnn",
        depth=3,
        width=8,
        steps=6,
        batch=4,
        patch=16,
        val_every=3,
        val_crop=32,
        device="cpu",
        seed=0,
        warmup=1,
        lr=2e-3,
        run_dir=str(out.parent / (out.stem + "_run")),
    )
    base.update(kw)
    return TrainConfig(**base)


def test_tiny_training_reduces_loss_and_writes_a_loadable_file(image_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.safetensors"
    events = []
    summary = run_job(
        train_job(_cfg(image_dir, out, steps=24, val_every=12, batch=8, lr=3e-3, width=4)),
        on_progress=events.append,
    )
    losses = [e.data["loss"] for e in events if "val" in e.data]
    assert losses[-1] < losses[0]
    vals = [e.data["val"] for e in events if e.data.get("val")]
    assert set(vals[0]) == {15.0, 25.0, 50.0}
    model, md = load_model(out)
    assert md["arch"] == "bfcnn" and int(md["steps"]) in (12, 24) and md["sigma_max"] == "100.0"
    assert summary["step"] == 24
    rows = list(csv.DictReader(open(Path(summary["run_dir"]) / "log.csv")))
    assert [int(r["step"]) for r in rows] == [12, 24]


def test_resume_continues_from_the_step_and_matches_an_uninterrupted_run(
    image_dir: Path, tmp_path: Path
) -> None:
    full = tmp_path / "full.safetensors"
    run_job(train_job(_cfg(image_dir, full, steps=6, val_every=3)))
    part = tmp_path / "part.safetensors"
    job = train_job(_cfg(image_dir, part, steps=6, val_every=3))
    for ev in job:  # interrupt the same 6-step run after its step-3 checkpoint
        if ev.step == 3 and "val" in ev.data:
            break
    job.close()
    ck = tmp_path / "part_run" / "last.ckpt"
    state = torch.load(ck, weights_only=True)
    assert state["step"] == 3
    resumed = tmp_path / "resumed.safetensors"
    steps_seen = []
    summary = run_job(
        train_job(
            _cfg(
                image_dir,
                resumed,
                steps=6,
                val_every=3,
                resume=str(ck),
                run_dir=str(tmp_path / "resumed_run"),
            )
        ),
        on_progress=lambda e: steps_seen.append(e.step),
    )
    assert summary["start_step"] == 3 and summary["step"] == 6 and min(steps_seen) > 3
    a = torch.load(tmp_path / "full_run" / "last.ckpt", weights_only=True)["model"]
    b = torch.load(tmp_path / "resumed_run" / "last.ckpt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6)


def test_seed_changes_the_run(image_dir: Path, tmp_path: Path) -> None:
    run_job(train_job(_cfg(image_dir, tmp_path / "a.safetensors", steps=2, val_every=2)))
    run_job(train_job(_cfg(image_dir, tmp_path / "b.safetensors", steps=2, val_every=2, seed=1)))
    a, _ = load_model(tmp_path / "a.safetensors")
    b, _ = load_model(tmp_path / "b.safetensors")
    assert not torch.equal(a.state_dict()["layers.0.conv.weight"], b.state_dict()["layers.0.conv.weight"])


def test_resume_rejects_another_architecture(image_dir: Path, tmp_path: Path) -> None:
    run_job(train_job(_cfg(image_dir, tmp_path / "a.safetensors", steps=1, val_every=1)))
    with pytest.raises(ValueError, match="checkpoint"):
        run_job(
            train_job(
                _cfg(
                    image_dir,
                    tmp_path / "b.safetensors",
                    width=4,
                    resume=str(tmp_path / "a_run" / "last.ckpt"),
                )
            )
        )


def test_bad_arguments(image_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        run_job(train_job(_cfg(tmp_path / "nope", tmp_path / "x.safetensors")))
    with pytest.raises(ValueError, match="patch"):
        run_job(train_job(_cfg(image_dir, tmp_path / "x.safetensors", patch=64)))
    with pytest.raises(ValueError, match="multiple"):
        run_job(train_job(_cfg(image_dir, tmp_path / "x.safetensors", arch="bfunet", depth=3, patch=18)))
    with pytest.raises(ValueError):
        run_job(train_job(_cfg(image_dir, tmp_path / "x.safetensors", sigma_max=-1)))


def test_cli_train(image_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from restorelab.cli import main

    out = tmp_path / "cli.safetensors"
    rc = main(
        [
            "train",
            "--data",
            str(image_dir),
            "--channels",
            "1",
            "--arch",
            "bfunet",
            "--depth",
            "2",
            "--width",
            "4",
            "--steps",
            "4",
            "--batch",
            "4",
            "--patch",
            "16",
            "--val-every",
            "2",
            "--device",
            "cpu",
            "--quiet",
            "--run-dir",
            str(tmp_path / "r"),
            "--out",
            str(out),
        ]
    )
    assert rc == 0 and out.is_file()
    text = capsys.readouterr().out
    assert "val PSNR" in text and "wrote" in text
    assert main(["train", "--data", str(image_dir), "--out", str(tmp_path / "x.pt")]) == 2


def test_recalibrate_sets_mean_batch_sd_and_leaves_training_rng(image_dir: Path, tmp_path: Path) -> None:
    import numpy as np

    from restorelab.models.nets import BFBatchNorm2d, build_model
    from restorelab.models.train import PatchSampler, load_image_set, recalibrate

    torch.manual_seed(0)
    net = build_model("bfcnn", 1, 3, 4)
    cfg = _cfg(image_dir, tmp_path / "x.safetensors", batch=4)
    rng = np.random.default_rng(3)
    sampler = PatchSampler(load_image_set([str(image_dir)], 1), 16, True, rng)
    state = rng.bit_generator.state
    bn = next(m for m in net.modules() if isinstance(m, BFBatchNorm2d))
    recalibrate(net, sampler, cfg, 1, seed=7, device=torch.device("cpu"))
    assert rng.bit_generator.state == state and sampler.rng is rng
    # the same single batch, recomputed by hand
    s2 = PatchSampler(load_image_set([str(image_dir)], 1), 16, True, np.random.default_rng(7))
    g = torch.Generator().manual_seed(7)
    x = torch.from_numpy(s2.batch(4))
    sig = torch.rand(4, generator=g) * (100 / 255)
    y = x + torch.randn(x.shape, generator=g) * sig.view(-1, 1, 1, 1)
    with torch.no_grad():
        h = net.layers[1].conv(net.layers[0](y))
    expect = torch.sqrt(h.var(dim=(0, 2, 3), unbiased=False) + bn.eps)
    torch.testing.assert_close(bn.running_sd, expect, rtol=1e-5, atol=1e-6)


def _dihedral(x):
    out = []
    for t in range(8):
        y = torch.rot90(x, t % 4, dims=(-2, -1))
        out.append(torch.flip(y, dims=(-1,)) if t >= 4 else y)
    return out


def test_device_sampler_cuts_true_dihedral_crops_of_the_images(image_dir: Path) -> None:
    """Every patch of the torch sampler is one of the 8 flips/rotations of a crop of some image."""
    import numpy as np

    from restorelab.models.train import TorchPatchSampler, load_image_set

    imgs = load_image_set([str(image_dir)], 1)
    imgs.append(np.ascontiguousarray(imgs[0][:, :20, :]))  # a smaller image: padding must never leak in
    s = TorchPatchSampler(imgs, 8, True, torch.device("cpu"), seed=3)
    x = s.batch_tensor(64)
    assert x.shape == (64, 1, 8, 8) and x.dtype == torch.float32
    full = [torch.tensor(im).float() / 255 for im in imgs]
    seen = set()
    for patch in x:
        found = False
        for im in full:
            h, w = im.shape[1:]
            for i in range(h - 7):
                for j in range(w - 7):
                    crop = im[:, i : i + 8, j : j + 8]
                    for t, d in enumerate(_dihedral(crop)):
                        if torch.equal(d, patch):
                            found = True
                            seen.add(t)
                            break
                    if found:
                        break
                if found:
                    break
            if found:
                break
        assert found
    assert len(seen) >= 6  # the transforms are all drawn (64 draws of 8: missing > 2 is ~impossible)
    again = TorchPatchSampler(imgs, 8, True, torch.device("cpu"), seed=3).batch_tensor(64)
    assert torch.equal(again, x)


def test_resume_with_the_device_sampler_matches_an_uninterrupted_run(image_dir: Path, tmp_path: Path) -> None:
    full = tmp_path / "full.safetensors"
    run_job(train_job(_cfg(image_dir, full, steps=6, val_every=3, sampler="torch")))
    part = tmp_path / "part.safetensors"
    job = train_job(_cfg(image_dir, part, steps=6, val_every=3, sampler="torch"))
    for ev in job:
        if ev.step == 3 and "val" in ev.data:
            break
    job.close()
    ck = tmp_path / "part_run" / "last.ckpt"
    assert "dev_rng" in torch.load(ck, weights_only=True)
    run_job(
        train_job(
            _cfg(
                image_dir,
                tmp_path / "r.safetensors",
                steps=6,
                val_every=3,
                sampler="torch",
                resume=str(ck),
                run_dir=str(tmp_path / "resumed_run"),
            )
        )
    )
    a = torch.load(tmp_path / "full_run" / "last.ckpt", weights_only=True)["model"]
    b = torch.load(tmp_path / "resumed_run" / "last.ckpt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6)
