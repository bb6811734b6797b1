"""``restorelab decompose | recompose | sample | inverse`` and ``restorelab bench inverse``.

σ values are typed on the 0..255 scale (``--sigma 25``, ``--sigma-L 2.55``) like every
other command. Outputs are written only when a job has finished: an interrupted run
(Ctrl-C) leaves no partial file.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from restorelab.cli import CommandError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction, bench_sub: argparse._SubParsersAction) -> None:
    """Add ``decompose``, ``recompose``, ``sample``, ``inverse`` and ``bench inverse``."""
    from restorelab.prior import INVERSE_PARAMS, PNP_METHODS, SAMPLER_PARAMS
    from restorelab.prior.operators import TASKS

    p = sub.add_parser("decompose", help="multiscale layers by repeated denoising")
    p.add_argument("input", metavar="IN", help="image file")
    p.add_argument("outdir", metavar="OUTDIR", help="folder for base, residual layers and decomposition.json")
    p.add_argument("--method", "-m", required=True, help="denoiser name (see `restorelab methods`)")
    p.add_argument("--levels", "-n", type=int, default=4, help="number of residual layers (default 4)")
    p.add_argument("--sigma", type=float, default=25.0, help="denoiser strength, 0..255 scale")
    p.add_argument("--param", "-p", action="append", default=[], metavar="K=V", help="denoiser parameter")
    p.add_argument("--format", choices=("tiff", "npy"), default="tiff", help="layer file format (float32)")
    _common(p)
    p.set_defaults(func=cmd_decompose)

    p = sub.add_parser("recompose", help="x' = fⁿ(x) + Σ w_k r_k from a decompose folder")
    p.add_argument("outdir", metavar="DIR", help="folder written by `restorelab decompose`")
    p.add_argument("output", metavar="OUT", help="output image")
    p.add_argument("--gains", default="", help="comma-separated gains w_0 (finest), w_1, ... (missing: 1)")
    p.add_argument("--base-gain", type=float, default=1.0, help="gain of the base layer fⁿ(x)")
    _common(p)
    p.set_defaults(func=cmd_recompose)

    p = sub.add_parser("sample", help="draw images from the prior implicit in a denoiser (Algorithm 1)")
    p.add_argument("output", metavar="OUT", help="output image (K > 1: OUT_k, or --grid)")
    p.add_argument("--size", default="64,64", help="H,W (default 64,64)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=1)
    p.add_argument("--method", "-m", default="bfcnn", help="denoiser (default bfcnn, blind)")
    p.add_argument("--model", default=None, help="bfcnn model: gray, color, digits or a .safetensors path")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="denoiser parameter")
    p.add_argument("--grid", action="store_true", help="tile all samples into one image OUT")
    p.add_argument("--log", default=None, help="CSV file of t, sigma_t, h_t per iteration")
    _sampler_flags(p, SAMPLER_PARAMS)
    _common(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("inverse", help="linear inverse problem with a denoiser prior (Algorithm 2)")
    p.add_argument("input", metavar="IN", help="image (its measurements are taken; for inpaint the masked "
                   "pixels are ignored; with --lowres the low-resolution image for sr)")
    p.add_argument("output", metavar="OUT", help="output (K > 1: the mean; OUT_std, OUT_s<k>)")
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--mask", default=None, help="inpaint: mask image, non-zero (white) = pixels to fill")
    p.add_argument("--box", type=int, default=None, help="inpaint without mask: side of a centred hole")
    p.add_argument("--factor", type=int, default=None, help="sr: factor s (default 4)")
    p.add_argument("--fraction", type=float, default=None,
                   help="pixels: fraction of pixels kept; cs: measurements/pixels (default 0.1)")
    p.add_argument("--keep-fraction", type=float, default=None, help="deblur: fraction of frequencies kept")
    p.add_argument("--op-seed", type=int, default=None, help="seed of the random pixels / CS transform")
    p.add_argument("--lowres", action="store_true", help="sr: IN is the low-resolution image")
    p.add_argument("--method", "-m", default="bfcnn", help="denoiser (default bfcnn)")
    p.add_argument("--model", default=None, help="bfcnn model: gray, color, digits or a .safetensors path")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="denoiser parameter")
    p.add_argument("--solver", default="sampler", choices=("sampler", *PNP_METHODS),
                   help="Algorithm 2 (default) or a deterministic plug-and-play / RED solver")
    p.add_argument("--iters", type=int, default=60, help="PnP/RED iterations")
    p.add_argument("--degraded", default=None, help="also write the degraded image M Mᵀ IN here")
    p.add_argument("--log", default=None, help="CSV file of t, sigma_t, h_t per iteration")
    _sampler_flags(p, INVERSE_PARAMS)
    _common(p)
    p.set_defaults(func=cmd_inverse)

    b = bench_sub.add_parser("inverse", help="Algorithm 2 vs Telea/bicubic on centre crops")
    b.add_argument("--set", dest="set_dir", required=True, help="folder of test images (e.g. BSD68)")
    b.add_argument("--size", type=int, default=64, help="centre-crop size (default 64)")
    b.add_argument("--tasks", default="inpaint,pixels,sr,deblur,cs", help="comma-separated tasks")
    b.add_argument("--samples", type=int, default=4, help="K samples per run (PSNR of one and of the mean)")
    b.add_argument("--limit", type=int, default=None, help="only the first N images")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--beta", type=float, default=0.01)
    b.add_argument("--method", "-m", default="bfcnn", help="denoiser (default bfcnn)")
    b.add_argument("--model", default=None, help="bfcnn model")
    b.add_argument("--pnp", action="store_true", help="also run PnP-ADMM with the same denoiser")
    b.add_argument("--note", default="", help="a sentence added under the table (e.g. which weights)")
    b.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    b.add_argument("--out", default="BENCHMARKS.md", help="markdown file whose section is (re)written")
    b.add_argument("--no-write", action="store_true", help="print the table only")
    b.set_defaults(func=cmd_bench_inverse)


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="torch device")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def _sampler_flags(p: argparse.ArgumentParser, params: tuple[Any, ...]) -> None:
    """One flag per sampler Param (``--sigma-L`` etc.); σ-like values on the 0..255 scale."""
    g = p.add_argument_group("sampler parameters")
    for prm in params:
        if prm.name == "preview_every":
            continue
        flag = "--" + prm.name.replace("_", "-")
        unit = " (0..255 scale)" if prm.sigma_like else ""
        default = prm.default * 255 if prm.sigma_like else prm.default
        if prm.kind is bool:
            g.add_argument(flag, dest="s_" + prm.name, action="store_true", help=prm.help)
        else:
            g.add_argument(flag, dest="s_" + prm.name, default=None, metavar=prm.kind.__name__.upper(),
                           help=f"{prm.help}{unit} (default {default:g})")


def _sampler_values(args: argparse.Namespace, params: tuple[Any, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for prm in params:
        v = getattr(args, "s_" + prm.name, None)
        if v is None or (prm.kind is bool and v is False):
            continue
        if prm.sigma_like and not isinstance(v, bool):
            try:
                v = float(v) / 255.0
            except ValueError:
                raise CommandError(f"--{prm.name.replace('_', '-')} expects a number, got {v!r}") from None
        out[prm.name] = prm.coerce(v) if not isinstance(v, str) else prm.parse(v)
    return out


def _denoiser(method: str, model: str | None, items: list[str], device: str) -> Any:
    from restorelab import denoise

    cls = denoise.get_class(method)
    try:
        from restorelab.cli.denoise_cmd import parse_param_values

        values = parse_param_values(cls, list(items))
    except ImportError:  # pragma: no cover - the denoise command group is always there
        values = dict(i.split("=", 1) for i in items)
    if model is not None:
        if "model" not in {p.name for p in cls.params}:
            raise CommandError(f"method '{method}' has no model parameter")
        values["model"] = model
    return denoise.get(method, device=device, **values)


def _bar(desc: str, quiet: bool) -> Any:
    from tqdm import tqdm

    return tqdm(desc=desc, unit="it", file=sys.stderr, disable=quiet, leave=False, mininterval=0.5)


def _drive(job: Any, desc: str, quiet: bool) -> Any:
    """Run a job with a progress bar (σ_t shown); nothing is written before it returns."""
    from restorelab.jobs import run_job

    bar = _bar(desc, quiet)

    def on(ev: Any) -> None:
        if ev.total and bar.total != ev.total:
            bar.total = ev.total
        if ev.sigma is not None:
            bar.set_postfix_str(f"σ_t={ev.sigma * 255:.2f}/255", refresh=False)
        if ev.step > bar.n:
            bar.update(ev.step - bar.n)  # redraws at most every mininterval

    try:
        return run_job(job, on_progress=on)
    finally:
        bar.close()


def _load(path: str) -> Any:
    from restorelab.io import load_image

    return load_image(path)


def _check_free(paths: list[Path], overwrite: bool) -> None:
    for q in paths:
        if q.exists() and not overwrite:
            raise FileExistsError(f"{q} exists; use --overwrite to replace it")


def _save(path: Path, image: Any, overwrite: bool) -> None:
    from restorelab.io import save_image

    save_image(path, image, overwrite=overwrite)


def _suffixed(out: Path, suffix: str) -> Path:
    return out.with_name(out.stem + suffix + out.suffix)


def _write_log(path: str, res: Any, overwrite: bool) -> None:
    q = Path(path)
    _check_free([q], overwrite)
    K = res.sigma_log.shape[1] if res.sigma_log.ndim == 2 else 1
    with open(q, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["t", "sigma_t", "h_t"] + ([f"sigma_t_{k}" for k in range(K)] if K > 1 else []))
        for i, (t, s, h) in enumerate(res.log):
            row = [t, f"{s:.6g}", f"{h:.6g}"]
            if K > 1:
                row += ["" if v != v else f"{v:.6g}" for v in res.sigma_log[i]]
            w.writerow(row)


def tile(images: list[Any], pad: int = 2) -> Any:
    """Tile images (H, W[, C]) into a near-square grid with ``pad`` pixels of white between."""
    import math

    import numpy as np

    n = len(images)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    h, w = images[0].shape[:2]
    shape = (rows * h + (rows + 1) * pad, cols * w + (cols + 1) * pad) + images[0].shape[2:]
    out = np.ones(shape, np.float32)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        y0, x0 = pad + r * (h + pad), pad + c * (w + pad)
        out[y0 : y0 + h, x0 : x0 + w] = np.clip(im, 0, 1)
    return out


# --------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------
def cmd_decompose(args: argparse.Namespace) -> int:
    """x = fⁿ(x) + Σ r_k: write base and residual layers (float32, unclipped) and a JSON index."""
    import numpy as np

    from restorelab.prior import decompose_job

    x = _load(args.input)
    if args.levels < 1:
        raise CommandError("--levels must be >= 1")
    den = _denoiser(args.method, None, args.param, args.device)
    out = Path(args.outdir)
    ext = ".tif" if args.format == "tiff" else ".npy"
    names = ["base" + ext] + [f"residual_{k:02d}{ext}" for k in range(args.levels)]
    _check_free([out / n for n in names] + [out / "decomposition.json"], args.overwrite)
    dec = _drive(decompose_job(x, den, args.levels, args.sigma / 255.0), "decompose", args.quiet)
    out.mkdir(parents=True, exist_ok=True)
    layers = [dec.base, *dec.residuals]
    for name, layer in zip(names, layers, strict=True):
        _save_float(out / name, np.asarray(layer, np.float32), args.overwrite)
    meta = {
        "method": args.method,
        "params": {k: v for k, v in den.values.items()},
        "sigma": args.sigma,
        "levels": args.levels,
        "base": names[0],
        "residuals": names[1:],
        "shape": list(x.shape),
        "formula": "x = base + sum(residuals); r_k = f^k(x) - f^(k+1)(x)",
    }
    _write_json(out / "decomposition.json", meta, args.overwrite)
    if not args.quiet:
        err = float(np.abs(dec.recompose() - x).max())
        print(f"wrote {len(layers)} layers to {out} (unit-gain reconstruction error {err:.2e})")
    return 0


def _save_float(path: Path, a: Any, overwrite: bool) -> None:
    """Float32, unclipped: .npy or float TIFF."""
    from restorelab.io import save_image

    save_image(path, a, overwrite=overwrite, bit_depth=32)


def _write_json(path: Path, data: dict[str, Any], overwrite: bool) -> None:
    import os
    import tempfile

    _check_free([path], overwrite)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=".json-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def cmd_recompose(args: argparse.Namespace) -> int:
    """x' = base_gain · fⁿ(x) + Σ w_k r_k from a decompose folder."""
    from restorelab.prior import Decomposition

    d = Path(args.outdir)
    idx = d / "decomposition.json"
    if not idx.is_file():
        raise CommandError(f"{idx} not found: run `restorelab decompose` first")
    try:
        meta = json.loads(idx.read_text(encoding="utf-8"))
        base = _load(str(d / meta["base"]))
        res = [_load(str(d / n)) for n in meta["residuals"]]
    except (KeyError, json.JSONDecodeError) as e:
        raise CommandError(f"{idx} is not a decomposition index ({e})") from None
    n = len(res)
    gains = [float(g) for g in args.gains.split(",") if g.strip()] if args.gains else []
    if len(gains) > n:
        raise CommandError(f"{len(gains)} gains given but the decomposition has {n} levels")
    gains += [1.0] * (n - len(gains))
    out = Path(args.output)
    _check_free([out], args.overwrite)
    img = Decomposition(base, res).recompose(gains, base_gain=args.base_gain)
    _save(out, img, args.overwrite)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Algorithm 1: unconditional samples of the denoiser's prior."""
    from restorelab.prior import SAMPLER_PARAMS, sample_job

    try:
        h, w = (int(v) for v in args.size.replace("x", ",").split(","))
    except ValueError:
        raise CommandError(f"--size expects H,W, got {args.size!r}") from None
    vals = _sampler_values(args, SAMPLER_PARAMS)
    den = _denoiser(args.method, args.model, args.param, args.device)
    out = Path(args.output)
    K = vals.get("samples", 1)
    outs = [out] if (K == 1 or args.grid) else [_suffixed(out, f"_{k}") for k in range(K)]
    _check_free(outs, args.overwrite)
    res = _drive(sample_job(den, shape=(h, w), channels=args.channels, device=args.device, **vals),
                 "Algorithm 1", args.quiet)
    if not res.converged:
        print(f"restorelab: warning: {res.message}", file=sys.stderr)
    if args.log:
        _write_log(args.log, res, args.overwrite)
    if args.grid:
        _save(out, tile(res.samples), args.overwrite)
    else:
        for q, s in zip(outs, res.samples, strict=True):
            _save(q, s, args.overwrite)
    if not args.quiet:
        head = res.message if res.converged else f"not converged after {res.iterations} iterations"
        print(f"{head} ({res.seconds:.1f} s)")
    return 0


def cmd_inverse(args: argparse.Namespace) -> int:
    """Algorithm 2 (or PnP/RED) on the measurements of IN."""
    import numpy as np

    from restorelab.prior import INVERSE_PARAMS, inverse_job, operators, pnp_job

    img = _load(args.input)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    kw: dict[str, Any] = {}
    if args.box is not None:
        kw["box"] = args.box
    if args.factor is not None:
        kw["factor"] = args.factor
    if args.fraction is not None:
        kw["fraction"] = args.fraction
    if args.keep_fraction is not None:
        kw["keep_fraction"] = args.keep_fraction
    if args.op_seed is not None:
        kw["seed"] = args.op_seed
    allowed = {p.name for p in operators.TASK_PARAMS[args.task]}
    bad = set(kw) - allowed
    if bad:
        raise CommandError(f"--{sorted(bad)[0].replace('_', '-')} does not apply to --task {args.task}")
    mask = None
    if args.mask is not None:
        if args.task != "inpaint":
            raise CommandError("--mask applies to --task inpaint only")
        mask = _load(args.mask)
    if args.lowres:
        if args.task != "sr":
            raise CommandError("--lowres applies to --task sr only")
        s = kw.get("factor", 4)
        shape = (img.shape[0] * s, img.shape[1] * s)
        op = operators.make("sr", shape, **kw)
        data: Any = op.measurements_from_low_resolution(img)
        if img.ndim == 2:
            data = data.reshape(-1)
    else:
        op = operators.make(args.task, img.shape[:2], mask=mask, **kw)
        if mask is not None and mask.shape[:2] != img.shape[:2]:
            raise CommandError(f"mask is {mask.shape[:2]} but the image is {img.shape[:2]}")
        data = img
    den = _denoiser(args.method, args.model, args.param, args.device)
    vals = _sampler_values(args, INVERSE_PARAMS)
    out = Path(args.output)
    K = vals.get("samples", 1)
    extra = [_suffixed(out, "_std")] + [_suffixed(out, f"_s{k}") for k in range(K)] if K > 1 else []
    deg = [Path(args.degraded)] if args.degraded else []
    _check_free([out, *extra, *deg], args.overwrite)
    if args.solver == "sampler":
        res = _drive(inverse_job(den, op, data, device=args.device, **vals), "Algorithm 2", args.quiet)
        if not res.converged:
            print(f"restorelab: warning: {res.message}", file=sys.stderr)
        if args.log:
            _write_log(args.log, res, args.overwrite)
        if K > 1:
            _save(out, res.mean, args.overwrite)
            _save(extra[0], res.std, args.overwrite)
            for q, s_img in zip(extra[1:], res.samples, strict=True):
                _save(q, s_img, args.overwrite)
        else:
            _save(out, res.samples[0], args.overwrite)
        head = res.message if res.converged else f"not converged after {res.iterations} iterations"
        msg = f"{head}; measurements matched to {res.consistency:.1e} ({res.seconds:.1f} s)"
    else:
        clip = vals.get("clip", False)
        job = pnp_job(den, op, data, method=args.solver, iters=args.iters, clip=clip, device=args.device)
        r = _drive(job, args.solver, args.quiet)
        _save(out, r.image, args.overwrite)
        msg = f"{args.solver}: {r.iterations} iterations, measurements matched to {r.consistency:.1e}"
    if args.degraded:
        import torch

        xc = data if not isinstance(data, np.ndarray) or data.shape[:2] != op.shape else op.Mt(data)
        degraded = op.M(np.asarray(xc, np.float32)) if not isinstance(xc, torch.Tensor) else op.M(xc).numpy()
        _save(deg[0], np.clip(degraded, 0, 1), args.overwrite)
    if not args.quiet:
        print(msg)
    return 0


def cmd_bench_inverse(args: argparse.Namespace) -> int:
    """Run :mod:`restorelab.bench.inverse`."""
    from restorelab.bench.inverse import run_bench

    return run_bench(args)
