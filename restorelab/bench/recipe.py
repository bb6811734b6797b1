"""``restorelab bench recipe``: the training recipe chosen on CPU proxies at equal compute.

Each configuration trains a small bias-free UNet (width ÷ 4 of the GPU model, 3 scales)
from the same seed on the same data, for the same number of training multiply-adds
(``--budget-gmac``; a training step of B patches of P² pixels costs 3·B·P²·MACs/pixel:
forward, input gradient and weight gradient). Equal MACs stand in for equal GPU time: on
a GPU the step time is close to proportional to the multiply-adds once the batch fills
the device, which a CPU wall-clock budget would not reproduce (a small width runs at a
worse fraction of a CPU's peak than a large one). Every run is then validated on the same
held-out images (the shipped weights are the EMA ones when EMA is on), after
re-estimating the norms' running SDs, at σ = 15, 25, 50; the mean PSNR ranks them.
One seed per configuration: differences below about 0.05 dB are within run-to-run noise.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restorelab.bench.report import machine_line, markdown_table, write_section

__all__ = ["ProxyConfig", "PROXIES", "proxy_steps", "bench_recipe"]


@dataclass(frozen=True)
class ProxyConfig:
    """One row of the recipe table: a name and the TrainConfig fields it changes from the base."""

    name: str
    what: str
    changes: dict[str, Any] = field(default_factory=dict)


#: the proxy base: L2, no EMA, bias-free UNet 3 scales of width 8 (proxy of 32), 32² × 16
BASE: dict[str, Any] = {
    "arch": "bfunet",
    "depth": 3,
    "width": 8,
    "patch": 32,
    "batch": 16,
    "lr": 1e-3,
    "loss": "l2",
    "ema": 0.0,
}

PROXIES: tuple[ProxyConfig, ...] = (
    ProxyConfig("base", "L2, no EMA, width 8, 32² × 16"),
    ProxyConfig("ema", "base + EMA 0.999", {"ema": 0.999}),
    ProxyConfig("l1", "L1 + EMA", {"ema": 0.999, "loss": "l1"}),
    ProxyConfig("charbonnier", "Charbonnier + EMA", {"ema": 0.999, "loss": "charbonnier"}),
    ProxyConfig("w12", "width 12 (proxy of 48) + EMA", {"ema": 0.999, "width": 12}),
    ProxyConfig("w16", "width 16 (proxy of 64) + EMA", {"ema": 0.999, "width": 16}),
    ProxyConfig("d4", "4 scales + EMA", {"ema": 0.999, "depth": 4}),
    ProxyConfig("p48b8", "48² × 8 + EMA", {"ema": 0.999, "patch": 48, "batch": 8}),
    ProxyConfig("p64b4", "64² × 4 + EMA", {"ema": 0.999, "patch": 64, "batch": 4}),
    ProxyConfig("p32b32", "32² × 32 + EMA (half the steps)", {"ema": 0.999, "batch": 32}),
)


def proxy_steps(fields: dict[str, Any], channels: int, budget_gmac: float) -> tuple[int, float]:
    """Steps that spend ``budget_gmac`` G training multiply-adds, and the MACs per pixel of the net."""
    from restorelab.models.flops import macs_per_pixel
    from restorelab.models.nets import build_model

    net = build_model(fields["arch"], channels, fields["depth"], fields["width"])
    mpp = macs_per_pixel(net, fields["patch"])
    per_step = 3.0 * fields["batch"] * fields["patch"] ** 2 * mpp
    return max(1, int(round(budget_gmac * 1e9 / per_step))), mpp


def bench_recipe(
    data: list[str],
    *,
    val: list[str] | None = None,
    budget_gmac: float = 400.0,
    only: list[str] | None = None,
    channels: int = 1,
    threads: int = 1,
    seed: int = 0,
    val_count: int = 16,
    val_crop: int = 96,
    recal_batches: int = 20,
    out: str | None = "docs/training/recipe.md",
    verbose: bool = True,
) -> list[dict[str, Any]]:
    """Train every proxy configuration for the same MACs and tabulate the held-out PSNR.

    Returns one dict per configuration (name, steps, seconds, PSNR per σ, mean) and writes
    the table as the ``recipe`` section of ``out``.
    """
    from restorelab.jobs import run_job
    from restorelab.models.train import TrainConfig, train_job

    if budget_gmac <= 0:
        raise ValueError("--budget-gmac must be > 0")
    known = {p.name: p for p in PROXIES}
    names = only or [p.name for p in PROXIES]
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f"unknown proxy configuration(s) {', '.join(bad)}; known: {', '.join(known)}")
    sigmas = (15.0, 25.0, 50.0)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="restorelab-recipe-") as tmp:
        for name in names:
            pc = known[name]
            fields = {**BASE, **pc.changes}
            steps, mpp = proxy_steps(fields, channels, budget_gmac)
            cfg = TrainConfig(
                data=list(data),
                out=str(Path(tmp) / f"{name}.safetensors"),
                channels=channels,
                steps=steps,
                val=list(val) if val else None,
                val_every=steps,
                val_sigmas=sigmas,
                val_count=val_count,
                val_crop=val_crop,
                recal_batches=recal_batches,
                warmup=max(1, steps // 50),
                device="cpu",
                threads=threads,
                seed=seed,
                compile="none",
                run_dir=str(Path(tmp) / name),
                **fields,
            )
            t0 = time.perf_counter()
            summary = run_job(train_job(cfg))
            secs = time.perf_counter() - t0
            v = summary["last_val"]
            row = {
                "name": name,
                "what": pc.what,
                "steps": steps,
                "patches": steps * fields["batch"],
                "macs_per_pixel": mpp,
                "seconds": secs,
                "psnr": {s: v.get(s, math.nan) for s in sigmas},
                "mean": sum(v.get(s, math.nan) for s in sigmas) / len(sigmas),
            }
            rows.append(row)
            if out and len(rows) < len(names):  # partial table: a cut-short run keeps its rows
                _write_table(
                    rows,
                    data,
                    val,
                    budget_gmac,
                    only,
                    names,
                    channels,
                    threads,
                    seed,
                    val_count,
                    val_crop,
                    recal_batches,
                    out,
                    False,
                )
            if verbose:
                print(
                    f"{name:12s} {steps:6d} steps {secs:6.0f} s  "
                    + " ".join(f"σ{int(s)}={row['psnr'][s]:.2f}" for s in sigmas)
                    + f"  mean {row['mean']:.3f} dB",
                    flush=True,
                )
    _write_table(
        rows,
        data,
        val,
        budget_gmac,
        only,
        names,
        channels,
        threads,
        seed,
        val_count,
        val_crop,
        recal_batches,
        out,
        verbose,
    )
    return rows


def _write_table(
    rows: list[dict[str, Any]],
    data: list[str],
    val: list[str] | None,
    budget_gmac: float,
    only: list[str] | None,
    names: list[str],
    channels: int,
    threads: int,
    seed: int,
    val_count: int,
    val_crop: int,
    recal_batches: int,
    out: str | None,
    verbose: bool,
) -> None:
    sigmas = (15.0, 25.0, 50.0)
    base = next((r["mean"] for r in rows if r["name"] == "base"), None)
    table_rows = [
        [
            f"`{r['name']}`",
            r["what"],
            f"{r['macs_per_pixel'] / 1e3:.1f} k",
            str(r["steps"]),
            f"{r['patches']:,}",
            *(f"{r['psnr'][s]:.2f}" for s in sigmas),
            f"{r['mean']:.3f}",
            f"{r['mean'] - base:+.3f}" if base is not None else "–",
            f"{r['seconds']:.0f}",
        ]
        for r in rows
    ]
    header = ["config", "what", "MACs/px", "steps", "patches", "σ=15", "σ=25", "σ=50", "mean", "Δ base", "s"]
    table = markdown_table(header, table_rows)
    cmd = (
        f"restorelab bench recipe --data {' '.join(data)}"
        + (f" --val {' '.join(val)}" if val else "")
        + f" --budget-gmac {budget_gmac:g}"
        + (f" --only {','.join(names)}" if only else "")
        + (f" --threads {threads}" if threads != 1 else "")
    )
    text = (
        f"CPU proxies, {'gray' if channels == 1 else 'colour'}, blind σ ∈ [0, 100]: bias-free UNet, "
        f"3 scales, width 8 unless stated (the GPU widths 32/48/64 divided by 4), Adam lr 1e-3 with "
        f"2 % warm-up and a cosine anneal to 1 %, seed {seed}, each run {budget_gmac:g} G training "
        f"multiply-adds (3 × forward MACs; equal compute), validated on {val_count} held-out images "
        f"(centre {val_crop}² crops, fixed noise) after re-estimating the running SDs on "
        f"{recal_batches} batches; PSNR in dB of the shipped weights (EMA when on).\n\n"
        f"{table}\n\n`{cmd}` — {machine_line()}\n"
    )
    if len(rows) < len(names):
        text = text.replace("\n\n|", f"\n\nPartial: {len(rows)} of {len(names)} configurations done.\n\n|", 1)
    if verbose:
        print(table)
    if out:
        write_section(
            out, f"recipe-{'gray' if channels == 1 else 'color'}", text, title="Proxy runs at equal compute"
        )
