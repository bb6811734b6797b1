"""A short soak of the GUI worker: start/cancel cycles leave no thread and no worker behind."""

from __future__ import annotations

from typing import Any


def test_soak_cycles_cancel_and_leak_nothing(qapp: Any, tmp_path: Any) -> None:
    from restorelab.gui.bench import soak as bench_soak

    r = bench_soak.soak(40, 8, denoiser="tv", size=16, warmup=4)
    d, s = r["denoise"], r["sample"]
    assert d["cancelled"] == 40 and s["cancelled"] == 8  # each job was cancelled mid-run
    assert d["failed"] == s["failed"] == 0
    b, e = r["before"], r["after"]
    assert e["os_threads"] <= b["os_threads"] and e["py_threads"] <= b["py_threads"]
    assert e["job_workers"] == 0
    assert e["rss_mb"] - b["rss_mb"] < 50
    out = tmp_path / "B.md"
    assert bench_soak.main(["--denoise", "3", "--sample", "2", "--size", "16", "--out", str(out)]) == 0
    text = out.read_text()
    assert "<!-- bench:gui-soak -->" in text and "| denoise (tv, 16²) | 3 | 3 |" in text
