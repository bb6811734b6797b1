"""Train the shipped gray and colour denoisers to the recipe, resumably, with cards and tables.

``python -m restorelab.tools.train_models --data DIR --out OUT`` (what
``packaging/train_models.sh`` runs) trains each model with the recipe of
``docs/training/recipe.md`` (:data:`RECIPE`), then writes into ``OUT``: the weights
(``bfcnn_gray.safetensors``, ``bfcnn_color.safetensors``, EMA weights with the best
held-out PSNR), each run's ``log.csv``, a model card per model, the PSNR tables on the
test sets (``BENCHMARKS.md`` sections and the cards), the speed table of the gray model
against the 20-layer BF-CNN, and the resumable checkpoints ``checkpoints/<name>.ckpt``.

**Budgets.** Each model's cosine schedule anneals over ``--<name>-total-min`` minutes of
training (default: this session's ``--<name>-min``), and this invocation stops after
``--<name>-min``. A later invocation given the previous checkpoints (``--resume-dir``,
by default ``docs/training/checkpoints`` of the checkout) continues the same schedule
where it stopped (same weights, optimizer, EMA, schedule position and random states), so
one long schedule can be spread over several short GPU leases. ``--budget-steps N``
replaces the time budgets by N steps per model and ``--session-steps K`` stops this
invocation at step K (a CPU smoke test with ``--tiny``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from restorelab.safety import atomic_write_text

__all__ = ["RECIPE", "TINY", "model_config", "train_models", "main"]

#: the GPU recipe per shipped model (chosen on CPU proxies, docs/training/recipe.md)
RECIPE: dict[str, dict[str, Any]] = {
    "gray": {
        "channels": 1,
        "data": ["Train400"],
        "test_set": "BSD68",
        "title": "Bias-free UNet, gray, blind σ ∈ [0, 100]",
    },
    "color": {
        "channels": 3,
        "data": ["BSDS500-color/train", "BSDS500-color/test"],
        "test_set": "CBSD68",
        "title": "Bias-free UNet, colour, blind σ ∈ [0, 100]",
    },
}
#: training fields shared by both models: the proxies' ranking where it compares equal
#: networks (Charbonnier loss; smaller patches, more of them, at equal pixels per step; EMA
#: neutral at the end of the anneal and kept for runs cut before it); the capacity of the
#: shipped model (width 32, 4 scales), which proxies 300× shorter than this run cannot rank
COMMON: dict[str, Any] = {
    "arch": "bfunet",
    "depth": 4,
    "width": 32,
    "patch": 48,
    "batch": 512,
    "lr": 1e-3,
    "warmup": 300,
    "loss": "charbonnier",
    "ema": 0.999,
    "sigma_min": 0.0,
    "sigma_max": 100.0,
    "val_every": 1500,
}
#: a CPU smoke test: the same pipeline on a network of a few hundred parameters
TINY: dict[str, Any] = {"depth": 2, "width": 4, "patch": 16, "batch": 4, "warmup": 1, "val_every": 10**9}


def model_config(
    name: str,
    data_root: str | Path,
    out: str | Path,
    *,
    minutes: float | None,
    total_minutes: float | None,
    steps: int | None,
    resume: str | None,
    session_steps: int | None = None,
    device: str,
    compile: str = "auto",
    tiny: bool = False,
    seed: int = 0,
    command: str = "",
) -> Any:
    """The :class:`~restorelab.models.train.TrainConfig` of one shipped model under the recipe."""
    from restorelab.models.train import TrainConfig

    r = RECIPE[name]
    fields = {**COMMON, **(TINY if tiny else {})}
    root = Path(data_root)
    out = Path(out)
    return TrainConfig(
        data=[str(root / d) for d in r["data"]],
        out=str(out / f"bfcnn_{name}.safetensors"),
        channels=r["channels"],
        steps=int(steps) if steps else 10**9,
        max_minutes=None if steps else (total_minutes or minutes),
        stop_after_minutes=None if steps else minutes,
        stop_at_step=session_steps,
        device=device,
        compile=compile,
        seed=seed,
        resume=resume,
        run_dir=str(out / "runs" / name),
        val_crop=32 if tiny else 128,
        val_count=2 if tiny else 8,
        recal_batches=2 if tiny else 50,
        command=command,
        **fields,
    )


def _log(msg: str) -> None:
    print(f"=== {time.strftime('%H:%M:%S', time.gmtime())} {msg}", flush=True)


def train_models(
    data_root: str | Path,
    out: str | Path,
    *,
    names: Sequence[str] = ("gray", "color"),
    minutes: dict[str, float] | None = None,
    total_minutes: dict[str, float] | None = None,
    budget_steps: int | None = None,
    session_steps: int | None = None,
    resume_dir: str | Path | None = "docs/training/checkpoints",
    device: str = "auto",
    compile: str = "auto",
    tiny: bool = False,
    bench_sigmas: Sequence[float] = (15, 25, 50, 100),
    bench_limit: int = 0,
    speed_size: int = 1024,
    quiet: bool = False,
) -> dict[str, dict[str, Any]]:
    """Train, checkpoint, card and benchmark each named model; returns each run's summary."""
    from restorelab.bench.bfcnn import bench_psnr, bench_speed
    from restorelab.jobs import run_job
    from restorelab.models.card import write_card
    from restorelab.models.train import train_job

    minutes = minutes or {"gray": 5.5, "color": 3.5}
    total_minutes = total_minutes or {}
    outd = Path(out)
    (outd / "checkpoints").mkdir(parents=True, exist_ok=True)
    bench_md = str(outd / "BENCHMARKS.md")
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        if name not in RECIPE:
            raise ValueError(f"unknown model {name!r}; expected one of {', '.join(RECIPE)}")
        ck = Path(resume_dir) / f"{name}.ckpt" if resume_dir else None
        resume = str(ck) if ck is not None and ck.is_file() else None
        m = minutes.get(name)
        cmd = (
            f"python -m restorelab.tools.train_models --models {name} --{name}-min {m}"
            + (f" --{name}-total-min {total_minutes[name]}" if name in total_minutes else "")
            + (f" --budget-steps {budget_steps}" if budget_steps else "")
            + (f" --session-steps {session_steps}" if session_steps else "")
            + (" --tiny" if tiny else "")
            + (f" (resumed from {ck.name})" if resume else "")
        )
        cfg = model_config(
            name,
            data_root,
            outd,
            minutes=m,
            total_minutes=total_minutes.get(name),
            steps=budget_steps,
            resume=resume,
            session_steps=session_steps,
            device=device,
            compile=compile,
            tiny=tiny,
            command=cmd,
        )
        _log(f"{name}: " + (f"resuming {resume}" if resume else "fresh run") + f"; {cmd}")
        summary = run_job(
            train_job(cfg),
            on_progress=None
            if quiet
            else (lambda e: print(e.message, flush=True) if "val" in e.data else None),
        )
        results[name] = summary
        run = Path(summary["run_dir"])
        shutil.copyfile(run / "last.ckpt", outd / "checkpoints" / f"{name}.ckpt")
        shutil.copyfile(run / "log.csv", outd / f"{name}_log.csv")
        _log(
            f"{name}: {summary['step']} steps, {summary['patches_per_s']:.0f} patches/s, "
            f"{summary['tflops']:.3g} TFLOP/s, schedule "
            + ("complete" if summary["complete"] else f"at {summary['progress']:.3f} (resume continues it)")
        )
        weights = outd / f"bfcnn_{name}.safetensors"
        card = outd / f"bfcnn_{name}.md"
        write_card(weights, card, title=RECIPE[name]["title"], log_csv=outd / f"{name}_log.csv")
        test_dir = Path(data_root) / RECIPE[name]["test_set"]
        if bench_sigmas and test_dir.is_dir():
            _log(f"{name}: PSNR on {test_dir.name}")
            bench_psnr(
                str(test_dir),
                [float(s) for s in bench_sigmas],
                model=str(weights),
                device=device,
                limit=bench_limit,
                out=bench_md,
                card=str(card),
            )
    if "gray" in results and speed_size:
        _log(f"gray: speed against the 20-layer BF-CNN at {speed_size}²")
        bench_speed(
            size=speed_size,
            model=str(outd / "bfcnn_gray.safetensors"),
            device=device,
            repeats=10,
            out=bench_md,
        )
    atomic_write_text(
        outd / "summary.json",
        json.dumps(
            {k: {kk: v[kk] for kk in v if kk != "last_val"} for k, v in results.items()},
            indent=1,
            default=str,
        )
    )
    _log("done")
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m restorelab.tools.train_models", description=__doc__)
    ap.add_argument("--data", required=True, help="folder holding Train400, BSDS500-color, BSD68, CBSD68")
    ap.add_argument("--out", required=True, help="where weights, logs, cards, tables, checkpoints go")
    ap.add_argument("--models", default="gray,color")
    for name, m in (("gray", 5.5), ("color", 3.5)):
        ap.add_argument(f"--{name}-min", type=float, default=m, help=f"minutes of this session ({m})")
        ap.add_argument(
            f"--{name}-total-min", type=float, default=None, help="minutes the schedule anneals over"
        )
    ap.add_argument("--budget-steps", type=int, default=None, help="N steps per model instead of minutes")
    ap.add_argument(
        "--session-steps", type=int, default=None, help="stop this invocation at this step (resumable)"
    )
    ap.add_argument("--tiny", action="store_true", help="a network of a few hundred parameters (smoke test)")
    ap.add_argument("--resume-dir", default="docs/training/checkpoints")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", default="auto")
    ap.add_argument("--bench-sigmas", default="15,25,50,100")
    ap.add_argument("--bench-limit", type=int, default=0)
    ap.add_argument("--speed-size", type=int, default=1024)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    names = [n.strip() for n in a.models.split(",") if n.strip()]
    train_models(
        a.data,
        a.out,
        names=names,
        minutes={"gray": a.gray_min, "color": a.color_min},
        total_minutes={
            k: v for k, v in (("gray", a.gray_total_min), ("color", a.color_total_min)) if v is not None
        },
        budget_steps=a.budget_steps,
        session_steps=a.session_steps,
        resume_dir=a.resume_dir or None,
        device=a.device,
        compile=a.compile,
        tiny=a.tiny,
        bench_sigmas=[float(s) for s in a.bench_sigmas.split(",") if s.strip()],
        bench_limit=a.bench_limit,
        speed_size=a.speed_size,
        quiet=a.quiet,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
