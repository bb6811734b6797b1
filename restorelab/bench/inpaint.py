"""``restorelab bench inpaint`` and ``restorelab bench denoise-big``.

**inpaint** — painted-mask inpainting on colour photos, every method side by side in one run:
the classical fills (Telea, Navier–Stokes, biharmonic, the exemplar patch fill) and the
learned fast and sample modes (:mod:`restorelab.prior.inpaint`). Images: 256² centre crops
and whole images of ``--set``. Masks, seeded per image: three thin 5-px scratches, three
blobs of about 50×30 px, and a text overlay. PSNR and SSIM are over the whole image (only the
masked pixels differ from the truth), seconds are wall-clock per image on this machine.
``--big`` times the fast mode on a 12 MP photo (an image of the set enlarged) with 20
scratches. ``--fast S0:K:T,...`` adds fast-mode variants (σ₀ on the 0..255 scale, K
refinements averaged, T iterations) — the measurement that chose the defaults.

**denoise-big** — the learned denoiser on a 24 MP image through its job (tiles): the longest
interval between two progress events, the time from a cancel request to the job's end, and
the peak resident memory of a fresh process (goal ≤ 1.5 GB on the CPU).
"""

from __future__ import annotations

import argparse
import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["register", "make_masks", "MASK_KINDS", "run_inpaint_bench", "run_denoise_big"]

MASK_KINDS = ("scratches", "blobs", "text")
#: the classical fills a user compares with (the ** marks are against the best of these)
CLASSICAL = ("telea", "ns", "biharmonic", "patch")
DEFAULT_METHODS = "telea,ns,biharmonic,patch,blend,fast,sample"


def register(sub: argparse._SubParsersAction, bench_sub: argparse._SubParsersAction) -> None:
    """Add ``bench inpaint`` and ``bench denoise-big``."""
    b = bench_sub.add_parser("inpaint", help="inpainting: classical fills vs the learned fast/sample modes")
    b.add_argument("--set", dest="set_dir", required=True, help="folder of colour test images (e.g. CBSD68)")
    b.add_argument("--limit", type=int, default=4,
                   help="images of the set (sorted; default 4; 0 with --big: only the 12 MP run)")
    b.add_argument("--full", type=int, default=1, help="of those, how many also whole (default 1)")
    b.add_argument("--crop", type=int, default=256, help="centre-crop side (default 256)")
    b.add_argument("--masks", default=",".join(MASK_KINDS), help="comma-separated mask kinds")
    b.add_argument("--methods", default=DEFAULT_METHODS,
                   help="comma-separated methods (classical fills, fast, sample)")
    b.add_argument("--fast", default="", help="extra fast-mode variants S0:K:T (σ₀ on 0..255, K averaged, "
                   "T iterations), comma-separated")
    b.add_argument("--sample-k", type=int, default=2, help="sample mode: K samples (default 2)")
    b.add_argument("--sample-iters", type=int, default=300, help="sample mode: iteration cap (default 300)")
    b.add_argument("--sample-masks", default="blobs",
                   help="mask kinds the sample mode runs on, on the crops only (default blobs: it costs "
                   "minutes per image on a CPU)")
    b.add_argument("--big", action="store_true", help="also time the fast mode on 12 MP with 20 scratches")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    b.add_argument("--out", default="BENCHMARKS.md", help="markdown file whose section is (re)written")
    b.add_argument("--section", default="inpaint", help="key of the BENCHMARKS.md section (default inpaint)")
    b.add_argument("--no-write", action="store_true", help="print the table only")
    b.set_defaults(func=cmd_bench_inpaint)

    d = bench_sub.add_parser("denoise-big",
                             help="learned denoiser on a 24 MP image: progress, cancel, memory")
    d.add_argument("--megapixels", type=float, default=24.0, help="image size (default 24 MP, 6000x4000)")
    d.add_argument("--cancel-after", type=float, default=10.0,
                   help="seconds after which another thread cancels the run")
    d.add_argument("--full", action="store_true", help="also run the whole image to the end (long on a CPU)")
    d.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    d.add_argument("--out", default="BENCHMARKS.md")
    d.add_argument("--no-write", action="store_true")
    d.set_defaults(func=cmd_bench_denoise_big)


# --------------------------------------------------------------------------------------
# masks
# --------------------------------------------------------------------------------------
def make_masks(shape: tuple[int, int], kind: str, seed: int, count: int | None = None) -> np.ndarray:
    """A boolean (H, W) mask: ``scratches`` (thin 5-px lines, 3 by default), ``blobs``
    (ellipses of about 50×30 px, 3 by default) or ``text`` (a line of text, strokes 3 px)."""
    import cv2

    H, W = shape
    rng = np.random.default_rng(seed)
    m = np.zeros((H, W), np.uint8)
    if kind == "scratches":
        for _ in range(count or 3):
            x0, y0 = int(rng.integers(0, W)), int(rng.integers(0, H))
            ang = rng.uniform(0, math.pi)
            length = rng.uniform(0.5, 1.0) * max(H, W)
            x1, y1 = int(x0 + length * math.cos(ang)), int(y0 + length * math.sin(ang))
            cv2.line(m, (x0, y0), (x1, y1), 1, thickness=5)
    elif kind == "blobs":
        for _ in range(count or 3):
            cx, cy = int(rng.integers(30, max(31, W - 30))), int(rng.integers(20, max(21, H - 20)))
            cv2.ellipse(m, (cx, cy), (25, 15), float(rng.uniform(0, 180)), 0, 360, 1, thickness=-1)
    elif kind == "text":
        scale = max(0.8, min(H, W) / 256)
        y = int(H * rng.uniform(0.35, 0.65))
        cv2.putText(m, "restorelab 2026", (max(2, W // 16), y), cv2.FONT_HERSHEY_SIMPLEX, scale, 1,
                    thickness=max(2, round(3 * scale)), lineType=cv2.LINE_8)
    else:
        raise ValueError(f"unknown mask kind {kind!r}; expected one of {', '.join(MASK_KINDS)}")
    return m.astype(bool)


# --------------------------------------------------------------------------------------
# inpaint bench
# --------------------------------------------------------------------------------------
def _method_runner(name: str, device: str, sample_k: int, sample_iters: int) -> Any:
    from restorelab.prior import fills
    from restorelab.prior.inpaint import inpaint

    if name in fills.FILLS:
        return lambda x, m: fills.fill(name, x, m)
    if name == "fast":
        return lambda x, m: inpaint(x, m, "bfcnn", device=device, mode="fast").image
    if name == "sample":
        return lambda x, m: inpaint(x, m, "bfcnn", device=device, mode="sample", samples=sample_k,
                                    max_iter=sample_iters).image
    if name.startswith("fast:"):
        s0, k, t = name.split(":")[1:]
        return lambda x, m: inpaint(x, m, "bfcnn", device=device, mode="fast", sigma0=float(s0) / 255.0,
                                    average=int(k), iters=int(t)).image
    raise ValueError(f"unknown method {name!r}")


def run_inpaint_bench(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """Run the inpainting bench; returns the markdown section and the raw numbers."""
    from restorelab.bench.report import machine_line, markdown_table
    from restorelab.image import as_float_image
    from restorelab.io import is_image_path, load_image
    from restorelab.metrics import psnr, ssim

    d = Path(args.set_dir)
    all_files = sorted(f for f in d.iterdir() if f.is_file() and is_image_path(f))
    if not all_files:
        raise SystemExit(f"{d}: no image")
    files = all_files[: args.limit]
    kinds = [k.strip() for k in args.masks.split(",") if k.strip()]
    methods = [k.strip() for k in args.methods.split(",") if k.strip()]
    methods += [f"fast:{v.strip()}" for v in args.fast.split(",") if v.strip()]
    runners = {n: _method_runner(n, args.device, args.sample_k, args.sample_iters) for n in methods}
    sample_kinds = {k.strip() for k in args.sample_masks.split(",") if k.strip()}
    # (scale, kind, method) -> lists
    res: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    t_all = time.perf_counter()
    for i, f in enumerate(files):
        full = as_float_image(load_image(f))
        full = full[:, :, :3] if full.ndim == 3 else np.repeat(full[:, :, None], 3, 2)
        H, W = full.shape[:2]
        c = min(args.crop, H, W)
        y0, x0 = (H - c) // 2, (W - c) // 2
        scales = [("crop", full[y0 : y0 + c, x0 : x0 + c])]
        if i < args.full:
            scales.append(("full", full))
        for scale, x in scales:
            for kind in kinds:
                m = make_masks(x.shape[:2], kind, args.seed + i)
                for name, run in runners.items():
                    if name == "sample" and (scale != "crop" or kind not in sample_kinds):
                        continue
                    t0 = time.perf_counter()
                    out = np.clip(run(x, m), 0, 1)
                    dt = time.perf_counter() - t0
                    r = res.setdefault((scale, kind, name), {"psnr": [], "ssim": [], "s": []})
                    r["psnr"].append(psnr(x, out))
                    r["ssim"].append(ssim(x, out))
                    r["s"].append(dt)
                    print(f"{f.name} {scale} {kind} {name}: {r['psnr'][-1]:.2f} dB, {dt:.1f} s", flush=True)
    big_line = ""
    if args.big:
        import cv2

        from restorelab.prior.inpaint import inpaint

        src = as_float_image(load_image(all_files[0]))[:, :, :3]
        x = cv2.resize(src, (4000, 3000), interpolation=cv2.INTER_CUBIC).clip(0, 1).astype(np.float32)
        m = make_masks((3000, 4000), "scratches", args.seed, count=20)
        t0 = time.perf_counter()
        out = inpaint(x, m, "bfcnn", device=args.device, mode="fast")
        dt = time.perf_counter() - t0
        big_line = (f"`restorelab bench inpaint --set {args.set_dir} --limit 0 --big` ({machine_line()}): "
                    f"12 MP (4000×3000, {all_files[0].name} enlarged) with 20 scratches "
                    f"({int(m.sum()):,} pixels to fill): fast mode {dt:.1f} s in {len(out.regions)} windows "
                    f"(goal ≤ 60 s), PSNR {psnr(x, np.clip(out.image, 0, 1)):.2f} dB; "
                    f"Telea {psnr(x, _timed_fill(x, m)):.2f} dB.")
        print(big_line, flush=True)
    header = ["images", "mask", "method", "PSNR (dB)", "SSIM", "s / image"]
    rows = []
    for scale in ("crop", "full"):
        for kind in kinds:
            best_classical = max(
                (float(np.mean(res[(scale, kind, n)]["psnr"])) for n in methods
                 if n in CLASSICAL and (scale, kind, n) in res),
                default=float("nan"),
            )
            for name in methods:
                r = res.get((scale, kind, name))
                if r is None:
                    continue
                p = float(np.mean(r["psnr"]))
                mark = " **" if name not in CLASSICAL and round(p, 2) > round(best_classical, 2) else ""
                label = f"{len(r['psnr'])} × {f'{args.crop}² crop' if scale == 'crop' else 'whole'}"
                rows.append([label, kind, name + mark, f"{p:.2f}", f"{np.mean(r['ssim']):.4f}",
                             f"{np.mean(r['s']):.2f}"])
    secs = time.perf_counter() - t_all
    text = "" if not rows else (
        f"`restorelab bench inpaint --set {args.set_dir} --limit {args.limit} --full {args.full}"
        + (f" --masks {args.masks}" if args.masks != ",".join(MASK_KINDS) else "")
        + (f" --methods {args.methods}" if args.methods != DEFAULT_METHODS else "")
        + (f" --fast {args.fast}" if args.fast else "")
        + f" --sample-k {args.sample_k} --sample-iters {args.sample_iters}"
        + f" --sample-masks {args.sample_masks}"
        + (f" --section {getattr(args, 'section', 'inpaint')}"
           if getattr(args, "section", "inpaint") != "inpaint" else "")
        + "` "
        f"({len(files)} images, {secs / 60:.1f} min in all; {machine_line()}). PSNR and SSIM over the "
        "whole image (only the masked pixels differ), mean over the images; ** marks a row above "
        "the best of the four classical fills (telea, ns, biharmonic, patch) for that mask. blend = the "
        "mean of the ns and biharmonic fills; fast = blend start + short "
        "Algorithm 2 refinement, the default; fast:S0:K:T = the fast mode with σ₀ = S0/255, K "
        "refinements averaged, T iterations; sample = full Algorithm 2 from noise, mean of K samples, "
        "iteration cap as given, on the crops with the --sample-masks kinds only.\n\n"
        + markdown_table(header, rows) + "\n"
    )
    return text, {"rows": rows, "seconds": secs, "big": big_line}


def _timed_fill(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    from restorelab.prior import fills

    return fills.telea(x, m)


def cmd_bench_inpaint(args: argparse.Namespace) -> int:
    from restorelab.bench.bfcnn import _write_locked

    text, raw = run_inpaint_bench(args)
    print(text)
    if not args.no_write and text:
        title = "Inpainting: classical fills vs the learned modes"
        if args.section != "inpaint":
            title += f" ({args.section})"
        _write_locked(args.out, args.section, text, title)
    if not args.no_write and raw["big"]:
        _write_locked(args.out, "inpaint-big", raw["big"] + "\n",
                      "Inpainting a 12 MP photo with 20 scratches")
    return 0


# --------------------------------------------------------------------------------------
# denoise-big
# --------------------------------------------------------------------------------------
def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_denoise_big(megapixels: float, cancel_after: float, full: bool, device: str) -> dict[str, float]:
    """Denoise a synthetic ``megapixels`` colour image with the shipped colour model through the
    job (tiles): the longest interval between progress events, the cancel latency, the peak RSS."""
    from restorelab import denoise
    from restorelab.jobs import Cancelled, CancelToken, run_job

    rss0 = _peak_rss_mb()
    w = int(round(math.sqrt(megapixels * 1e6 * 1.5)))
    h = int(round(megapixels * 1e6 / w))
    rng = np.random.default_rng(0)
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    xx = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    img = (0.5 + 0.3 * np.sin(12 * xx + 7 * yy + np.array([0, 1, 2], np.float32))).astype(np.float32)
    img += rng.standard_normal(size=(h, w, 3), dtype=np.float32) * np.float32(25 / 255)
    den = denoise.get("bfcnn", device=device)
    den._fast(3)  # the weights are loaded (and folded) before the clock starts
    token = CancelToken()
    times: list[float] = []
    t_cancel = [0.0]

    def cancel() -> None:
        t_cancel[0] = time.perf_counter()
        token.cancel()

    # the cancel comes from another thread, as the GUI's Cancel button does, while a tile runs
    timer = threading.Timer(cancel_after, cancel)
    t0 = time.perf_counter()
    timer.start()
    done = False
    try:
        run_job(den.job(img, 25 / 255), cancel=token,
                on_progress=lambda ev: times.append(time.perf_counter()))
        done = True
    except Cancelled:
        pass
    finally:
        timer.cancel()
    t_end = time.perf_counter()
    gaps = np.diff([t0, *times]) if times else np.array([t_end - t0])
    first = times[0] - t0 if times else float("nan")
    out: dict[str, float] = {
        "width": w, "height": h, "first_progress_s": first, "max_interval_s": float(gaps.max()),
        "cancel_latency_s": (t_end - t_cancel[0]) if t_cancel[0] else float("nan"),
        "tiles_done": len(times), "finished": float(done),
    }
    if full:
        ts: list[float] = []
        t1 = time.perf_counter()
        run_job(den.job(img, 25 / 255), on_progress=lambda ev: ts.append(time.perf_counter()))
        out["full_s"] = time.perf_counter() - t1
        out["max_interval_full_s"] = float(np.diff([t1, *ts]).max())
    out["peak_rss_mb"] = _peak_rss_mb()
    out["rss_before_mb"] = rss0
    return out


def cmd_bench_denoise_big(args: argparse.Namespace) -> int:
    import os

    from restorelab.bench.bfcnn import _write_locked
    from restorelab.bench.report import machine_line, markdown_table

    load = os.getloadavg()[0]
    r = run_denoise_big(args.megapixels, args.cancel_after, args.full, args.device)
    rows = [
        ["1-minute load average of the machine at the start", f"{load:.1f} (on {os.cpu_count()} cores)"],
        ["image", f"{int(r['width'])}×{int(r['height'])} colour ({args.megapixels:g} MP)"],
        ["first progress event after", f"{r['first_progress_s']:.2f} s"],
        ["longest interval between progress events", f"{r['max_interval_s']:.2f} s (goal ≤ 2 s)"],
        ["cancel requested after", f"{args.cancel_after:g} s"],
        ["cancel latency (request → job ended)", f"{r['cancel_latency_s']:.2f} s (goal ≤ 1 s)"],
        ["peak RSS of the process", f"{r['peak_rss_mb']:.0f} MB (goal ≤ 1536 MB; "
         f"{r['rss_before_mb']:.0f} MB before the image)"],
    ]
    if "full_s" in r:
        rows.append(["whole image, to the end", f"{r['full_s']:.1f} s, longest interval "
                     f"{r['max_interval_full_s']:.2f} s"])
    text = (f"`restorelab bench denoise-big --megapixels {args.megapixels:g} --cancel-after "
            f"{args.cancel_after:g}{' --full' if args.full else ''}` (shipped colour model, job path in "
            f"tiles; {machine_line()})\n\n" + markdown_table(["quantity", "value"], rows) + "\n")
    print(text)
    if not args.no_write:
        _write_locked(args.out, "denoise-big", text,
                      "Learned denoiser on a 24 MP image: progress, cancel, memory")
    return 0
