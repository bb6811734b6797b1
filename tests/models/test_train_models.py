"""The GPU training script's python entry, run on the CPU with a tiny network and a few steps."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from tests.models.conftest import _write_images


def test_train_models_writes_everything_and_a_second_run_continues(tmp_path: Path) -> None:
    from restorelab.models.weights import load_model
    from restorelab.tools.train_models import main

    root = tmp_path / "data"
    _write_images(root / "Train400", n=4, size=24)
    _write_images(root / "BSD68", n=1, size=24)
    out1, out2 = tmp_path / "out1", tmp_path / "out2"
    args = ["--data", str(root), "--models", "gray", "--tiny", "--device", "cpu", "--compile", "none",
            "--bench-sigmas", "25", "--speed-size", "0", "--quiet"]  # fmt: skip
    # the first lease: the schedule is planned over 6 steps, this run stops after 3
    first = ["--budget-steps", "6", "--session-steps", "3", "--resume-dir", str(tmp_path / "none")]
    assert main([*args, "--out", str(out1), *first]) == 0
    ck1 = torch.load(out1 / "checkpoints" / "gray.ckpt", weights_only=True)
    assert ck1["step"] == 3 and ck1["progress"] == 0.5
    for f in ("bfcnn_gray.safetensors", "bfcnn_gray.md", "gray_log.csv", "BENCHMARKS.md", "summary.json"):
        assert (out1 / f).is_file(), f
    _, md = load_model(out1 / "bfcnn_gray.safetensors")
    assert md["ema"] == "0.999" and md["arch"] == "bfunet" and int(md["width"]) == 4
    # a second lease with the checkpoint continues the same schedule from step 3 to its end
    keep = tmp_path / "keep"
    keep.mkdir()
    shutil.copyfile(out1 / "checkpoints" / "gray.ckpt", keep / "gray.ckpt")
    second = ["--budget-steps", "6", "--resume-dir", str(keep), "--bench-sigmas", ""]
    assert main([*args, "--out", str(out2), *second]) == 0
    ck2 = torch.load(out2 / "checkpoints" / "gray.ckpt", weights_only=True)
    assert ck2["step"] == 6 and ck2["progress"] == 1.0 and ck2["schedule"] == ck1["schedule"]
    assert not torch.equal(ck2["ema"]["inc.conv.weight"], ck1["ema"]["inc.conv.weight"])
