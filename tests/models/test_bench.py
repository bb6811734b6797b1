"""``restorelab bench bfcnn`` and ``bench bfcnn-speed`` on tiny inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def test_bench_psnr_writes_sections(
    tiny_gray_model: Path, image_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from restorelab.cli import main

    bench_md = tmp_path / "BENCH.md"
    card = tmp_path / "card.md"
    card.write_text("# card\n")
    rc = main(
        [
            "bench",
            "bfcnn",
            "--set",
            str(image_dir),
            "--sigma",
            "25,50",
            "--model",
            str(tiny_gray_model),
            "--device",
            "cpu",
            "--limit",
            "2",
            "--out",
            str(bench_md),
            "--card",
            str(card),
        ]
    )
    assert rc == 0
    text = bench_md.read_text()
    assert "<!-- bench:bfcnn-" in text and "| 25 |" in text and "| 50 |" in text
    assert "| 25 |" in card.read_text() and card.read_text().startswith("# card")
    out = capsys.readouterr().out
    # the noisy PSNR at sigma 25 on [0,1] images is about 20.2 dB
    noisy = float(out.split("sigma 25: noisy ")[1].split(" dB")[0])
    assert abs(noisy - 20.17) < 0.3


def test_bench_speed(tiny_gray_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from restorelab.bench.bfcnn import bench_speed

    res = bench_speed(
        size=64, model=str(tiny_gray_model), device="cpu", repeats=1, out=str(tmp_path / "B.md")
    )
    assert res["max_diff"] < 1e-4 and res["ratio"] > 0 and np.isfinite(res["fast_s"])
    # the tiny 3-layer, 4-channel model against the 20-layer, 64-channel BF-CNN in the same run
    assert res["ratio_vs_reference"] == res["fast_s"] / res["reference_fast_s"]
    assert res["ratio_vs_reference"] < 0.5
    text = (tmp_path / "B.md").read_text()
    assert float(text.split("in the same run: **")[1].split("**")[0]) == pytest.approx(
        res["ratio_vs_reference"], abs=5e-4
    )
    ref_line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("BF-CNN 20×64"))
    kmacs = float(ref_line.split(" k MACs/pixel")[0].rsplit(", ", 1)[1])
    assert kmacs == pytest.approx(9 * (64 + 18 * 64 * 64 + 64) / 1e3, abs=0.05)
