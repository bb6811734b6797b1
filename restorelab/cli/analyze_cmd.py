"""``restorelab analyze``: a denoiser's Jacobian on a crop: spectrum, basis, filters, ideal report."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _crop(text: str) -> tuple[int, int, int]:
    try:
        y, x, size = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--crop must be Y,X,SIZE (three integers), got {text!r}") from None
    return y, x, size


def _pixels(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(";"):
        if not part.strip():
            continue
        try:
            a, b = (int(v) for v in part.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--pixels must be 'y,x;y,x;...', got {text!r}") from None
        out.append((a, b))
    return out


def register(sub: Any, bench_sub: Any) -> None:
    """Add ``analyze`` to the commands and ``analysis`` to the benchmarks."""
    p = sub.add_parser(
        "analyze",
        help="what a denoiser has learned: Jacobian spectrum, adaptive basis and filters, ideal report",
        description="Compute the Jacobian J of a denoiser on a crop of IN (with Gaussian noise of std "
        "--sigma added, unless --noisy), and write its symmetric-part spectrum (CSV and plot), the top-k "
        "eigenvectors as an image grid, the adaptive filters (rows of J) at --pixels, and the "
        "ideal-denoiser report (Markdown and JSON).",
    )
    p.add_argument("input", metavar="IN", help="image file")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--method", help="registered denoiser name (e.g. bfcnn, heat, tv, nlm)")
    g.add_argument("--methods", help="'all' or comma-separated names: the report as one table")
    p.add_argument("--sigma", type=float, required=True, help="noise std on the 0..255 scale, e.g. 25")
    p.add_argument(
        "--crop", type=_crop, required=True, metavar="Y,X,SIZE", help="top, left, side of the crop"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--pixels",
        type=_pixels,
        default=None,
        metavar="Y,X;Y,X",
        help="image pixels whose adaptive filters to draw (default: the crop's centre)",
    )
    p.add_argument("-k", "--top", type=int, default=16, help="eigenvectors shown in the basis grid")
    p.add_argument("--noisy", action="store_true", help="IN is already noisy: no noise is added")
    p.add_argument("--gray", action="store_true", help="analyze the luminance of a colour image")
    p.add_argument("--seed", type=int, default=0, help="seed of the added noise")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (learned models)")
    p.add_argument(
        "--max-n",
        type=int,
        default=None,
        help="largest Jacobian side h·w·c (default 4096 gray = 64×64, 4800 colour = 40×40)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing files in --out")
    p.set_defaults(func=_analyze)

    b = bench_sub.add_parser(
        "analysis", help="Jacobian + spectrum time per method, ideal-denoiser table at σ=25"
    )
    b.add_argument("--size", type=int, default=32, help="crop side")
    b.add_argument("--sigma", type=float, default=25.0, help="noise std (0..255)")
    b.add_argument("--methods", default="all", help="'all' or comma-separated names")
    b.add_argument("--device", default="auto")
    b.add_argument("--out", default="BENCHMARKS.md")
    b.set_defaults(func=_bench)


def _load(args: argparse.Namespace) -> Any:
    import numpy as np

    from restorelab.io import load_image

    img = load_image(args.input)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if args.gray and img.ndim == 3:
        img = img @ np.array([0.299, 0.587, 0.114], np.float32)
    return img


def _analyze(args: argparse.Namespace) -> int:
    import numpy as np

    from restorelab import denoise
    from restorelab.analysis.ideal import ideal_report_job
    from restorelab.analysis.jacobian import check_crop, check_size, jacobian_job
    from restorelab.cli import CommandError
    from restorelab.jobs import run_job

    if not (np.isfinite(args.sigma) and args.sigma > 0):
        raise CommandError(f"--sigma must be > 0 on the 0..255 scale, got {args.sigma:g}")
    sigma = args.sigma / 255.0
    img = _load(args)
    y0, x0, size = args.crop
    try:
        top, left, h, w = check_crop(img.shape, (y0, x0, size, size))
        check_size((h, w, 1 if img.ndim == 2 else img.shape[2]), args.max_n)
    except ValueError as e:
        raise CommandError(f"--crop: {e}") from None
    pixels = args.pixels or [(top + h // 2, left + w // 2)]
    for py, px in pixels:
        if not (top <= py < top + h and left <= px < left + w):
            raise CommandError(
                f"--pixels: ({py},{px}) is outside the crop rows {top}..{top + h - 1}, "
                f"columns {left}..{left + w - 1}"
            )
    if args.top < 1:
        raise CommandError("-k must be >= 1")
    clean = img[top : top + h, left : left + w].astype(np.float64)
    rng = np.random.default_rng(args.seed)
    noisy = clean if args.noisy else clean + sigma * rng.standard_normal(clean.shape)
    names = (
        [args.method]
        if args.method
        else (
            denoise.names()
            if args.methods.strip() == "all"
            else [m.strip() for m in args.methods.split(",") if m.strip()]
        )
    )
    for nm in names:
        denoise.get_class(nm)  # KeyError lists the known names
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kw = {"max_n": args.max_n} if args.max_n else {}
    reports = []
    for nm in names:
        den = denoise.get(nm, device=args.device)
        t0 = time.perf_counter()
        print(f"{nm}: computing the Jacobian of a {h}×{w} crop ...", file=sys.stderr, flush=True)
        jac = run_job(jacobian_job(den, noisy, sigma, **kw))
        rep = run_job(ideal_report_job(den, clean, sigma, jacobian=jac))
        reports.append(rep)
        print(
            f"{nm}: {rep.method}, tr J = {rep.trace:.2f} of {rep.n}, flags: {', '.join(rep.flags) or 'none'} "
            f"({time.perf_counter() - t0:.1f} s)",
            file=sys.stderr,
        )
        if args.method:
            _write_single(out, jac, rep, pixels, (top, left), args.top, args.overwrite)
    _write_reports(out, reports, args, (top, left, h, w))
    print(f"wrote {out}")
    return 0


def _save(path: Path, img: Any, overwrite: bool) -> None:
    from restorelab.io import save_image

    save_image(path, img, overwrite=overwrite)


def _text(path: Path, text: str, overwrite: bool) -> None:
    from restorelab.cli import CommandError
    from restorelab.safety import atomic_write

    if path.exists() and not overwrite:
        raise CommandError(f"{path}: exists; use --overwrite to replace it")
    with atomic_write(path, "w") as f:
        f.write(text)


def _write_single(
    out: Path,
    jac: Any,
    rep: Any,
    pixels: list[tuple[int, int]],
    origin: tuple[int, int],
    k: int,
    overwrite: bool,
) -> None:
    import numpy as np

    from restorelab.analysis.jacobian import spectrum
    from restorelab.analysis.plot import image_grid, line_plot, signed_to_unit

    sp = spectrum(jac)
    ev = sp.eigenvalues
    lines = ["k,eigenvalue"] + [f"{i},{v:.8g}" for i, v in enumerate(ev)]
    _text(out / "spectrum.csv", "\n".join(lines) + "\n", overwrite)
    plot = line_plot(
        [("eigenvalues of (J + J^T)/2", np.arange(1, len(ev) + 1), ev)],
        title=f"{rep.denoiser} at sigma = {rep.sigma * 255:.3g}/255: shrinkage spectrum, "
        f"tr J = {rep.trace:.1f} of {rep.n}",
        xlabel="k",
        ylabel="lambda_k",
        logx=True,
        markers=False,
        hlines=(0.0, 1.0),
    )
    _save(out / "spectrum.png", plot, overwrite)
    k = min(k, jac.n)
    vecs = sp.eigenvectors[:, :k].T
    tiles = [signed_to_unit(jac.as_image(v)) for v in vecs]
    scale = max(1, 96 // max(jac.shape[:2]))
    _save(
        out / "basis.png",
        image_grid(tiles, cols=min(8, k), scale=scale, labels=[f"{v:.3f}" for v in ev[:k]]),
        overwrite,
    )
    ftiles, labels = [], []
    for py, px in pixels:
        r = jac.row(py - origin[0], px - origin[1])
        ftiles.append(signed_to_unit(r))
        labels.append(f"({py},{px})")
    _save(
        out / "filters.png",
        image_grid(ftiles, cols=min(6, len(ftiles)), scale=scale, labels=labels),
        overwrite,
    )


def _write_reports(
    out: Path, reports: list[Any], args: argparse.Namespace, crop: tuple[int, int, int, int]
) -> None:
    from dataclasses import asdict

    from restorelab.analysis.ideal import TOLERANCES, report_table
    from restorelab.bench.report import markdown_table

    header, rows = report_table(reports)
    top, left, h, w = crop
    md = (
        f"# Ideal-denoiser report\n\n`{Path(args.input).name}`, crop rows {top}..{top + h - 1}, columns "
        f"{left}..{left + w - 1}, σ = {args.sigma:g}/255"
        f"{' (input already noisy)' if args.noisy else f', noise seed {args.seed}'}.\n\n"
        + markdown_table(header, rows)
        + "\n\nidentity ‖f(x, σ→0) − x‖/‖x‖ on the clean crop; ‖J−Jᵀ‖/‖J‖ conservation; homogeneity "
        "max over α ∈ {0.5, 2} of ‖f(αy) − αf(y)‖/‖αf(y)‖; eig range of (J+Jᵀ)/2 (ideal: inside [0, 1]); "
        "‖J‖₂ contraction (ideal ≤ 1); a flag names each property beyond its tolerance "
        + ", ".join(f"{k} {v:g}" for k, v in TOLERANCES.items())
        + ".\n"
    )
    _text(out / "report.md", md, args.overwrite)
    _text(out / "report.json", json.dumps([asdict(r) for r in reports], indent=2) + "\n", args.overwrite)


def _bench(args: argparse.Namespace) -> int:
    from restorelab.bench.analysis import bench_analysis

    bench_analysis(size=args.size, sigma=args.sigma, methods=args.methods, device=args.device, out=args.out)
    return 0
