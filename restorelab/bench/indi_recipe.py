"""``restorelab bench indi-recipe``: the InDI training choices compared at equal compute.

Each configuration trains the InDI network (:mod:`restorelab.indi.train`) from the same
seed, on the same data, for the same number of steps of the same batch and patch size, with
the same warm-up and cosine schedule annealed to that step count: the configurations differ
only in how the time t of each training example is drawn (``--t-one``, the fraction of each
batch put at t = 1; the rest at t ~ U(0, 1], Delbracio & Milanfar 2023), so a step costs the
same in all of them and equal steps are equal compute. Every run is validated by the
training command's own held-out validation (the N = 1 answer F(y, 1) of the EMA weights on
centre crops with fixed degradations) every ``val_every`` steps; the table gives the best
and the last value and the step of the best. A rising last value means the recipe was still
learning when the budget ended; a best well before the end that the last value has fallen
from is the N = 1 answer traded for the rest of the path.
One seed per configuration: differences below about 0.05 dB are within run-to-run noise.
"""

from __future__ import annotations

import csv
import tempfile
import time
from pathlib import Path
from typing import Any

from restorelab.bench.report import machine_line, markdown_table, write_section

__all__ = ["bench_indi_recipe"]


def bench_indi_recipe(
    data: list[str],
    *,
    degradations: list[str],
    t_ones: list[float],
    steps: int = 2000,
    width: int = 16,
    depth: int = 3,
    batch: int = 16,
    patch: int = 48,
    lr: float = 3e-4,
    warmup: int | None = None,
    val_every: int = 250,
    val_crop: int = 96,
    threads: int = 1,
    seed: int = 0,
    out: str | None = "docs/training/indi_recipe.md",
    command: str = "",
    verbose: bool = True,
) -> list[dict[str, Any]]:
    """Train one InDI network per (degradation, t_one) for ``steps`` steps and tabulate the
    held-out N = 1 validation; write the table as the ``indi-recipe`` section of ``out``.

    ``warmup`` defaults to min(200, steps / 10); the path noise ε is the recommended one of
    :func:`restorelab.indi.train.recommended_eps`.

    Returns one dict per run: degradation, t_one, input PSNR, best and last N = 1 PSNR, the
    step of the best, seconds.
    """
    from restorelab.indi.degrade import DEGRADATIONS
    from restorelab.indi.train import IndiTrainConfig, recommended_eps, train_indi_job
    from restorelab.jobs import run_job

    bad = [d for d in degradations if d not in DEGRADATIONS]
    if bad or not degradations:
        raise ValueError(f"--degradations must name some of {', '.join(DEGRADATIONS)}, got {degradations}")
    if not t_ones or any(not 0.0 <= t <= 1.0 for t in t_ones):
        raise ValueError(f"--t-one values must be in [0, 1], got {t_ones}")
    if steps < 1 or val_every < 1:
        raise ValueError("--steps and --val-every must be >= 1")
    if warmup is None:
        warmup = min(200, max(1, steps // 10))
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="restorelab-indi-recipe-") as tmp:
        for deg in degradations:
            for t_one in t_ones:
                name = f"{deg}_t{t_one:g}"
                cfg = IndiTrainConfig(
                    data=list(data), out=str(Path(tmp) / f"{name}.safetensors"), channels=3,
                    arch="bfunet", depth=depth, width=width, steps=steps, batch=batch, patch=patch,
                    lr=lr, warmup=warmup, val_every=val_every, val_crop=val_crop, recal_batches=20,
                    device="cpu",
                    threads=threads, seed=seed, run_dir=str(Path(tmp) / name), degradation=deg,
                    eps=recommended_eps(deg), t_one=t_one,
                )
                t0 = time.perf_counter()
                run_job(train_indi_job(cfg))
                secs = time.perf_counter() - t0
                with open(Path(tmp) / name / "log.csv", newline="") as f:
                    log = [(int(r["step"]), float(r["val_psnr_input"]), float(r["val_psnr_N1"]))
                           for r in csv.DictReader(f)]
                best = max(log, key=lambda r: r[2])
                row = {"degradation": deg, "t_one": t_one, "steps": log[-1][0], "input": log[-1][1],
                       "best": best[2], "best_step": best[0], "last": log[-1][2], "seconds": secs}
                rows.append(row)
                if verbose:
                    print(f"{name}: input {row['input']:.2f} best N=1 {row['best']:.2f} (step "
                          f"{row['best_step']}) last {row['last']:.2f}, {secs:.0f} s", flush=True)
    table = markdown_table(
        ["degradation", "t = 1 share", "input (dB)", "best N = 1 (dB)", "at step", "last N = 1 (dB)",
         "minutes"],
        [(r["degradation"], f"{r['t_one']:g}", f"{r['input']:.2f}", f"{r['best']:.2f}",
          f"{r['best_step']}", f"{r['last']:.2f}", f"{r['seconds'] / 60:.1f}") for r in rows],
    )
    text = (
        f"Each row: the InDI network (width {width}, {depth} scales) trained for {steps} steps of "
        f"{batch} patches of {patch}² (peak lr {lr:g}, {warmup} warm-up steps, cosine to the last "
        f"step, EMA 0.999, seed {seed}) on the same data; `t = 1 share` is the fraction of each "
        f"batch trained at t = 1 (`--t-one`), the rest at t ~ U(0, 1]. Validation: the training "
        f"command's own N = 1 PSNR of the EMA weights on held-out {val_crop}² centre crops, every "
        f"{val_every} steps. One seed per row: differences below about 0.05 dB are noise.\n\n"
        f"{table}\n\n"
        + (f"Command: `{command}` ({(time.perf_counter() - t_start) / 60:.0f} min)  \n" if command else "")
        + f"Machine: {machine_line()}\n"
    )
    if verbose:
        print(text)
    if out:
        write_section(out, "indi-recipe", text, "InDI training recipe at equal compute")
    return rows
