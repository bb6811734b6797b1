"""``restorelab bench analysis``: the goals it judges by, and where it writes its table."""

from __future__ import annotations

from pathlib import Path

from restorelab.bench.analysis import bench_analysis, goal_seconds


def test_goals_are_the_issue_s_cpu_32_and_gpu_64_figures_and_none_elsewhere():
    assert goal_seconds("learned", 32, "cpu") == 10.0
    assert goal_seconds("classical", 32, "cpu") == 30.0
    assert goal_seconds("learned", 64, "cuda") == 5.0
    assert goal_seconds("learned", 64, "cpu") is None
    assert goal_seconds("classical", 64, "cuda") is None
    assert goal_seconds("learned", 48, "cuda") is None


def test_a_run_at_another_size_writes_its_own_section_and_keeps_the_default_one(tmp_path: Path):
    out = tmp_path / "B.md"
    out.write_text(
        "# Benchmarks\n\n<!-- bench:analysis -->\n## What a denoiser has learned\n\n"
        "KEEP\n<!-- /bench:analysis -->\n"
    )
    bench_analysis(size=8, methods="heat", device="cpu", out=str(out))
    text = out.read_text()
    assert "KEEP" in text.split("<!-- /bench:analysis -->")[0]
    assert "<!-- bench:analysis-8-cpu -->" in text
    section = text.split("<!-- bench:analysis-8-cpu -->")[1]
    assert "(8×8 gray, n = 64)" in section
    assert "| heat | exact-linear |" in section
    assert "--size 8 --methods heat --device cpu" in section
