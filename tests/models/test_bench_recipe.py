"""``restorelab bench recipe``: equal training multiply-adds per configuration, and its table."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_proxy_steps_spend_the_same_multiply_adds() -> None:
    from restorelab.bench.recipe import BASE, proxy_steps
    from restorelab.models.flops import macs_per_pixel
    from restorelab.models.nets import build_model

    budget = 250.0
    for changes in ({}, {"width": 16}, {"patch": 48, "batch": 8}, {"depth": 4}):
        f = {**BASE, **changes}
        steps, mpp = proxy_steps(f, 1, budget)
        assert mpp == macs_per_pixel(build_model("bfunet", 1, f["depth"], f["width"]), f["patch"])
        spent = steps * 3 * f["batch"] * f["patch"] ** 2 * mpp
        assert spent == pytest.approx(budget * 1e9, rel=0.5 / steps + 1e-9)
    # a 4x wider network costs about 4x more per pixel, so it gets about 4x fewer steps
    s8, m8 = proxy_steps(BASE, 1, budget)
    s16, m16 = proxy_steps({**BASE, "width": 16}, 1, budget)
    assert s16 == round(s8 * m8 / m16) or abs(s16 - s8 * m8 / m16) <= 1


def test_bench_recipe_writes_the_table(image_dir: Path, tmp_path: Path) -> None:
    from restorelab.bench.recipe import bench_recipe

    out = tmp_path / "recipe.md"
    out.write_text("# Recipe\n\nintro\n")
    res = bench_recipe(
        [str(image_dir)], budget_gmac=0.3, only=["base", "charbonnier"], val_count=1, val_crop=32,
        recal_batches=1, out=str(out), verbose=False,
    )  # fmt: skip
    assert [r["name"] for r in res] == ["base", "charbonnier"]
    text = out.read_text()
    assert text.startswith("# Recipe\n\nintro\n")
    rows = [ln for ln in text.splitlines() if ln.startswith("| `")]
    assert [r.split("|")[1].strip() for r in rows] == ["`base`", "`charbonnier`"]
    base_mean = float(rows[0].split("|")[9])
    ch_mean, delta = float(rows[1].split("|")[9]), float(rows[1].split("|")[10])
    assert base_mean == pytest.approx(res[0]["mean"], abs=5e-4)
    assert delta == pytest.approx(ch_mean - base_mean, abs=2e-3)
    assert int(rows[0].split("|")[4]) == 1  # 0.3 G MACs is one step of 16 patches of 32²
    assert "--only base,charbonnier" in text.split("`restorelab bench recipe")[1].split("`")[0]
    with pytest.raises(ValueError, match="unknown proxy"):
        bench_recipe([str(image_dir)], only=["nope"], out=None)


def test_bench_train_speed_reports_throughput_from_the_mac_count(tmp_path: Path) -> None:
    from restorelab.bench.train_speed import bench_train_speed
    from restorelab.models.flops import macs_per_pixel
    from restorelab.models.nets import build_model

    out = tmp_path / "B.md"
    rows = bench_train_speed(
        modes=["none"], device="cpu", depth=2, width=4, patch=16, batch=4, steps=2, warmup=1, out=str(out)
    )
    (r,) = rows
    mpp = macs_per_pixel(build_model("bfunet", 1, 2, 4), 16)
    assert r["mode"] == "none" and r["agreement"] == 0.0
    assert r["patches_per_s"] == pytest.approx(4 / (r["ms_per_step"] / 1e3), rel=1e-9)
    assert r["tflops"] == pytest.approx(r["patches_per_s"] * 16 * 16 * mpp * 6 / 1e12, rel=1e-9)
    row = next(ln for ln in out.read_text().splitlines() if ln.startswith("| none |"))
    assert float(row.split("|")[2]) == pytest.approx(r["patches_per_s"], abs=0.06)
    with pytest.raises(ValueError, match="steps"):
        bench_train_speed(modes=["none"], device="cpu", steps=0, out=None)
