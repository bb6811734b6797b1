"""`restorelab bench indi-recipe`: configurations at equal steps, differing only in the t = 1 share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from restorelab.bench.indi_recipe import bench_indi_recipe
from restorelab.cli import main
from restorelab.io import save_image


@pytest.fixture
def data(tmp_path: Path, astronaut_small: np.ndarray) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    for k in range(3):
        save_image(d / f"{k}.png", np.roll(astronaut_small, 17 * k, axis=1))
    return d


def test_rows_differ_only_in_the_t_one_share(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "recipe.md"
    rows = bench_indi_recipe([str(data)], degradations=["sr4"], t_ones=[0.0, 1.0], steps=4, width=4,
                             depth=2, batch=2, patch=16, warmup=1, val_every=2, val_crop=16, out=str(out),
                             verbose=False)
    assert [(r["degradation"], r["t_one"], r["steps"]) for r in rows] == [("sr4", 0.0, 4), ("sr4", 1.0, 4)]
    # the same held-out pairs judge both runs
    assert rows[0]["input"] == rows[1]["input"]
    # the share changes what is trained: the validations differ
    assert rows[0]["last"] != rows[1]["last"]
    assert all(r["best_step"] in (2, 4) for r in rows)  # validated every 2 of the 4 steps
    text = out.read_text()
    assert text.count("| sr4 |") == 2 and "<!-- bench:indi-recipe -->" in text


def test_bad_shares_and_degradations_are_refused(tmp_path: Path, data: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    base = ["bench", "indi-recipe", "--data", str(data), "--steps", "2", "--out", ""]
    assert main([*base, "--t-one", "0,1.5"]) == 2
    assert "[0, 1]" in capsys.readouterr().err
    assert main([*base, "--t-one", "half"]) == 2
    assert "--t-one" in capsys.readouterr().err
    assert main([*base, "--degradations", "noise"]) == 2
    assert "blur" in capsys.readouterr().err


def test_recommended_path_noise_is_none_for_jpeg_only() -> None:
    from restorelab.indi.train import recommended_eps

    assert recommended_eps("jpeg") == 0.0
    assert recommended_eps("blur") == recommended_eps("sr4") == 0.002
