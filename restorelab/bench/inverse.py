"""``restorelab bench inverse``: Algorithm 2 against the classical answer to each task.

On centre crops of a test set, for each task (inpaint: a centred hole of 30/64 of the
crop side, i.e. 30×30 on 64×64; pixels: 10 % of the pixels KEPT, 90 % missing; sr: 4×
block averages; deblur: 10 % of the Fourier coefficients kept (a centred low-pass band);
cs: 10 % random structured measurements) it reports the PSNR of one sample and of the
mean of K samples, the iterations and seconds per run, beside the classical answer:
OpenCV's ``cv2.inpaint`` (Telea) for the hole and the missing pixels, bicubic
interpolation of the block averages for super-resolution, and the least-squares
(minimum-norm) solution ``M x_c`` for deblurring and compressive sensing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["run_bench", "classical", "TASK_SETTINGS", "CLASSICAL_NAMES"]

TASK_SETTINGS: dict[str, dict[str, Any]] = {
    "inpaint": {},  # centred hole of 30/64 of the side
    "pixels": {"fraction": 0.1},
    "sr": {"factor": 4},
    "deblur": {"keep_fraction": 0.1},
    "cs": {"fraction": 0.1},
}

CLASSICAL_NAMES = {
    "inpaint": "cv2.inpaint Telea",
    "pixels": "cv2.inpaint Telea",
    "sr": "bicubic (cv2.resize)",
    "deblur": "least squares M x_c",
    "cs": "least squares M x_c",
}

_DESCR = {
    "inpaint": "centred {b}×{b} hole",
    "pixels": "10 % of pixels kept",
    "sr": "4× (4×4 block averages)",
    "deblur": "10 % low-pass DFT band kept",
    "cs": "10 % random DFT·signs measurements",
}


def classical(task: str, op: Any, x: np.ndarray) -> np.ndarray:
    """The classical answer to ``task`` given the measurements of ``x`` (gray (H, W) float32)."""
    import cv2

    if task in ("inpaint", "pixels"):
        # the 8-bit path (OpenCV's float32 path overshoots far outside [0, 1])
        fill = (~op.measured).astype(np.uint8) * 255
        known = np.round(np.clip(np.where(op.measured, x, 0), 0, 1) * 255).astype(np.uint8)
        return cv2.inpaint(known, fill, 3, cv2.INPAINT_TELEA).astype(np.float32) / 255.0
    if task == "sr":
        low = op.low_resolution(op.Mt(x)).astype(np.float32)
        return cv2.resize(low, (x.shape[1], x.shape[0]), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    return op.proj(x).astype(np.float32)


def _images(set_dir: str, limit: int | None) -> list[Path]:
    d = Path(set_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"test set folder {d} not found")
    exts = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy"}
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in exts)
    if not files:
        raise ValueError(f"no images in {d}")
    return files[:limit] if limit else files


def _crop(img: np.ndarray, s: int) -> np.ndarray:
    if img.ndim == 3:
        img = img[:, :, :3].mean(axis=2) if img.shape[2] >= 3 else img[:, :, 0]
    h, w = img.shape
    if h < s or w < s:
        raise ValueError(f"image of {h}×{w} is smaller than the crop size {s}")
    t, left = (h - s) // 2, (w - s) // 2
    return np.ascontiguousarray(img[t : t + s, left : left + s], dtype=np.float32)


def run_bench(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table, write its section of BENCHMARKS.md."""
    from restorelab import denoise
    from restorelab.bench.report import machine_line, markdown_table, write_section
    from restorelab.io import load_image
    from restorelab.jobs import run_job
    from restorelab.metrics import psnr
    from restorelab.prior import inverse_job, operators, pnp_job

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    for t in tasks:
        if t not in TASK_SETTINGS:
            raise ValueError(f"unknown task {t!r}; expected some of {', '.join(TASK_SETTINGS)}")
    if args.samples < 1 or args.size < 8:
        raise ValueError("--samples must be >= 1 and --size >= 8")
    values = {"model": args.model} if args.model else {}
    den = denoise.get(args.method, device=args.device, **values)
    files = _images(args.set_dir, args.limit)
    S = args.size
    rows_data: dict[str, dict[str, list[float]]] = {t: {} for t in tasks}

    def add(task: str, key: str, v: float) -> None:
        rows_data[task].setdefault(key, []).append(v)

    for i, f in enumerate(files):
        x = _crop(load_image(f), S)
        for task in tasks:
            op = operators.make(task, (S, S), **TASK_SETTINGS[task])
            add(task, "classical", psnr(x, np.clip(classical(task, op, x), 0, 1)))
            t0 = time.perf_counter()
            res = run_job(inverse_job(den, op, x, samples=args.samples, seed=args.seed, beta=args.beta,
                                      device=args.device))
            dt = time.perf_counter() - t0
            add(task, "one", psnr(x, np.clip(res.samples[0], 0, 1)))
            add(task, "mean", psnr(x, np.clip(res.mean, 0, 1)))
            add(task, "iters", res.iterations)
            add(task, "sec", dt)
            add(task, "conv", float(res.converged))
            add(task, "final_sigma", res.log[-1][1] if res.log else float("nan"))
            if args.pnp:
                t1 = time.perf_counter()
                r = run_job(pnp_job(den, op, x, method="pnp-admm", device=args.device))
                add(task, "pnp", psnr(x, np.clip(r.image, 0, 1)))
                add(task, "pnp_sec", time.perf_counter() - t1)
            d = rows_data[task]
            print(f"[{i + 1}/{len(files)}] {f.name} {task}: classical {d['classical'][-1]:.2f} dB, "
                  f"1 sample {d['one'][-1]:.2f} dB, mean of {args.samples} "
                  f"{d['mean'][-1]:.2f} dB, {res.iterations} it, {dt:.1f} s, "
                  f"σ_t → {res.log[-1][1] * 255:.2f}/255", file=sys.stderr, flush=True)

    b = max(1, round(S * 30 / 64))
    header = ["task", "measurements", "classical answer", "classical PSNR", "Alg. 2, 1 sample",
              f"Alg. 2, mean of {args.samples}"]
    if args.pnp:
        header += ["PnP-ADMM"]
    header += ["iterations", f"s/run (K={args.samples})", "converged"]
    rows = []
    for task in tasks:
        d = rows_data[task]
        row = [task, _DESCR[task].format(b=b), CLASSICAL_NAMES[task], f"{np.mean(d['classical']):.2f}",
               f"{np.mean(d['one']):.2f}", f"{np.mean(d['mean']):.2f}"]
        if args.pnp:
            row += [f"{np.mean(d['pnp']):.2f}"]
        row += [f"{np.mean(d['iters']):.0f}", f"{np.mean(d['sec']):.1f}",
                f"{int(sum(d['conv']))}/{len(d['conv'])}"]
        rows.append(row)
    table = markdown_table(header, rows)
    argv = list(sys.argv[1:])
    if "--note" in argv:  # the note is printed under the table, not in the command
        i = argv.index("--note")
        argv[i : i + 2] = ["--note", "'...'"]
    cmd = "restorelab " + " ".join(argv) if "bench" in argv else "restorelab bench inverse"
    model = args.model or "default"
    text = (
        f"PSNR (dB, mean over {len(files)} centre crops of {S}×{S} from `{Path(args.set_dir).name}`) of "
        f"Algorithm 2 (Kadkhodaie & Simoncelli 2021) with the `{args.method}` denoiser (model {model}), "
        f"β = {args.beta}, σ₀ = 1, σ_L = 0.01, h₀ = 0.01, seed {args.seed}, beside the classical answer "
        "to the same measurements. For `pixels`, 10 % of the pixels are kept (90 % missing), "
        "as in the paper.\n\n"
        f"{table}\n\n" + (f"{args.note}\n\n" if getattr(args, "note", "") else "")
        + f"Command: `{cmd}`  \nMachine: {machine_line()}\n"
    )
    print(table)
    if not args.no_write:
        key = f"inverse-{S}"  # one section per crop size: the CPU 64² table and the GPU 256² one
        write_section(args.out, key, text, f"Linear inverse problems (Algorithm 2), {S}×{S} crops")
        print(f"wrote the '{key}' section of {args.out}", file=sys.stderr)
    return 0
