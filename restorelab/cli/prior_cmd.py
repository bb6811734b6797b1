"""``restorelab decompose | recompose | sample | inverse`` and ``restorelab bench inverse``.

σ values are typed on the 0..255 scale (``--sigma 25``, ``--sigma-L 2.55``) like every
other command. Outputs are written only when a job has finished: an interrupted run
(Ctrl-C) leaves no partial file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from restorelab.cli import CommandError
from restorelab.cli.common import (
    check_memory,
    check_name,
    check_outputs,
    check_range,
    warn,
    write_csv,
    write_json,
)

__all__ = ["register", "SAMPLE_SIDE", "LEVELS", "FACTOR", "ITERS", "sampler_memory"]

#: declared ranges of the numbers that size the work of these commands
SAMPLE_SIDE = (4, 4096)  # sample --size H,W
LEVELS = (1, 16)  # decompose --levels: fⁿ(x) barely changes after a dozen denoisings
FACTOR = (2, 64)  # inverse --task sr --factor
ITERS = (1, 10_000)  # inverse --solver pnp-* --iters
#: bytes of memory per pixel, per channel and per sample while the sampler runs, with a
#: margin over the peak RSS growth of a 3-iteration 512² gray sample on the CPU: the learned
#: bfcnn 1471 B/px (its 64 feature maps), the heat denoiser 104 B/px
SAMPLER_BYTES = {True: 1600, False: 200}
#: sampling more than this many pixels × samples warns that the run will be long
SAMPLE_WARN_PIXELS = 256 * 256 * 4


def _sigma_type(text: str) -> float:
    from restorelab.cli.common import sigma255_type

    return sigma255_type(text)


def sampler_memory(pixels: int, channels: int, samples: int, learned: bool) -> int:
    """Estimated peak bytes of Algorithm 1/2 on ``samples`` images of ``pixels`` pixels."""
    return int(pixels) * int(channels) * int(samples) * SAMPLER_BYTES[bool(learned)]


def register(sub: argparse._SubParsersAction, bench_sub: argparse._SubParsersAction) -> None:
    """Add ``decompose``, ``recompose``, ``sample``, ``inverse`` and ``bench inverse``."""
    from restorelab.prior import INVERSE_PARAMS, PNP_METHODS, SAMPLER_PARAMS
    from restorelab.prior.fills import FILLS
    from restorelab.prior.inpaint import INPAINT_MODES
    from restorelab.prior.operators import TASKS

    p = sub.add_parser("decompose", help="multiscale layers by repeated denoising")
    p.add_argument("input", metavar="IN", help="image file")
    p.add_argument("outdir", metavar="OUTDIR", help="folder for base, residual layers and decomposition.json")
    p.add_argument("--method", "-m", required=True, help="denoiser name (see `restorelab methods`)")
    p.add_argument("--levels", "-n", type=int, default=4,
                   help=f"number of residual layers, {LEVELS[0]} to {LEVELS[1]} (default 4)")
    p.add_argument("--sigma", type=_sigma_type, default=25.0, help="denoiser strength, 0..255 scale")
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
    p.add_argument("--size", default="64,64",
                   help=f"H,W, each {SAMPLE_SIDE[0]} to {SAMPLE_SIDE[1]} (default 64,64)")
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
    p.add_argument("--mask", default=None,
                   help="inpaint: mask image; white (at least half of full scale) = pixels to fill")
    p.add_argument("--box", type=int, default=None,
                   help="inpaint without mask: side of a centred hole, 1 to min(H, W) - 1")
    p.add_argument("--factor", type=int, default=None,
                   help=f"sr: factor s, {FACTOR[0]} to {FACTOR[1]}, at most min(H, W)/2 (default 4)")
    p.add_argument("--fraction", type=float, default=None,
                   help="pixels: fraction of pixels kept; cs: measurements/pixels (default 0.1)")
    p.add_argument("--keep-fraction", type=float, default=None, help="deblur: fraction of frequencies kept")
    p.add_argument("--op-seed", type=int, default=None, help="seed of the random pixels / CS transform")
    p.add_argument("--lowres", action="store_true", help="sr: IN is the low-resolution image")
    p.add_argument("--mode", default=None, choices=INPAINT_MODES,
                   help="inpaint: fast (classical fill + short Algorithm 2 refinement, default), sample "
                   "(full Algorithm 2, K = --samples samples: mean, OUT_std, OUT_s<k>) or fill "
                   "(classical only)")
    p.add_argument("--fill", default=None, choices=tuple(FILLS),
                   help="inpaint: the classical fill (the fast mode's start; default blend, "
                   "the mean of ns and biharmonic)")
    p.add_argument("--method", "-m", default="bfcnn", help="denoiser (default bfcnn)")
    p.add_argument("--model", default=None, help="bfcnn model: gray, color, digits or a .safetensors path")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="denoiser parameter")
    p.add_argument("--solver", default="sampler", choices=("sampler", *PNP_METHODS),
                   help="Algorithm 2 (default) or a deterministic plug-and-play / RED solver")
    p.add_argument("--iters", type=int, default=60, help=f"PnP/RED iterations, {ITERS[0]} to {ITERS[1]}")
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


def _denoiser_class(method: str) -> Any:
    from restorelab import denoise

    try:
        return denoise.get_class(method)
    except KeyError as e:
        raise CommandError(e.args[0]) from None


class _Denoisers:
    """``make(device)`` → the denoiser on that device, its parameters parsed (and checked)
    once, at construction; only the latest copy is kept (a copy on a device that ran out of
    memory is let go before the CPU one is built)."""

    def __init__(self, method: str, model: str | None, items: list[str]) -> None:
        from restorelab.cli.denoise_cmd import parse_param_values

        cls = _denoiser_class(method)
        self.method = method
        self.values = parse_param_values(cls, list(items))
        if model is not None:
            if "model" not in {p.name for p in cls.params}:
                raise CommandError(f"method '{method}' has no model parameter")
            self.values["model"] = model
        self.last: Any = None
        self._device: str | None = None

    def __call__(self, device: str) -> Any:
        from restorelab import denoise

        if self.last is None or device != self._device:
            self.last = None
            self.last = denoise.get(self.method, device=device, **self.values)
            self._device = device
        return self.last


def _bar(desc: str, quiet: bool) -> Any:
    from tqdm import tqdm

    return tqdm(desc=desc, unit="it", file=sys.stderr, disable=quiet, leave=False, mininterval=0.5)


def _drive(make_job: Any, device: str, desc: str, quiet: bool) -> Any:
    """Run ``make_job(device)`` with a progress bar (σ_t shown), retried on the CPU when the
    device runs out of memory (:func:`restorelab.safety.oom_fallback_job`); nothing is
    written before it returns."""
    from restorelab.cli.common import drive
    from restorelab.safety import oom_fallback_job

    bar = _bar(desc, quiet)
    shown: list[bool] = []

    def on(ev: Any) -> None:
        data = ev.data or {}
        if data.get("regions") and not shown and not quiet:
            shown.append(True)
            boxes = data["regions"]
            listed = ", ".join(f"[{b[0]}:{b[2]}, {b[1]}:{b[3]}]" for b in boxes[:8])
            more = f" and {len(boxes) - 8} more" if len(boxes) > 8 else ""
            bar.write(f"{desc}: {len(boxes)} region(s) (rows, columns): {listed}{more}", file=sys.stderr)
        if ev.total:
            if bar.total != ev.total:
                bar.total = ev.total
            n = ev.step
        elif data.get("fraction") is not None:  # the sampler's progress in log σ: the bar's ETA follows it
            if bar.total != _FRACTION_STEPS:
                bar.total = _FRACTION_STEPS
                bar.unit = "‰"
            n = int(round(float(data["fraction"]) * _FRACTION_STEPS))
        else:
            n = ev.step
        if ev.sigma is not None and ev.sigma == ev.sigma:
            bar.set_postfix_str(f"σ_t={ev.sigma * 255:.2f}/255", refresh=False)
        if n > bar.n:
            bar.update(n - bar.n)  # redraws at most every mininterval, with rate and ETA

    try:
        return drive(oom_fallback_job(make_job, device), bar, on)
    finally:
        bar.close()


#: bar steps of a job that reports a fraction done instead of a count
_FRACTION_STEPS = 1000


def _suffixed(out: Path, suffix: str) -> Path:
    return out.with_name(out.stem + suffix + out.suffix)


def _save(path: Path, image: Any, overwrite: bool) -> None:
    from restorelab.io import save_image

    save_image(path, image, overwrite=overwrite)


def _write_log(path: Path, res: Any, overwrite: bool) -> None:
    K = res.sigma_log.shape[1] if res.sigma_log.ndim == 2 else 1
    header = ["t", "sigma_t", "h_t"] + ([f"sigma_t_{k}" for k in range(K)] if K > 1 else [])
    rows = []
    for i, (t, s, h) in enumerate(res.log):
        row = [t, f"{s:.6g}", f"{h:.6g}"]
        if K > 1:
            row += ["" if v != v else f"{v:.6g}" for v in res.sigma_log[i]]
        rows.append(row)
    write_csv(path, header, rows, overwrite)


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


def _header(path: str) -> Any:
    """Size and depth of an input from its header (no decoding), or a one-line error."""
    from restorelab.io import image_info

    return image_info(path)


# --------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------
def _index_path(out: Path) -> Path:
    return out / "decomposition.json"


def _prepare_folder(out: Path, overwrite: bool) -> None:
    """A decomposition folder is written whole: refuse a non-empty folder without
    ``--overwrite``, and never replace one that is not a decomposition."""
    if os.path.lexists(out) and not out.is_dir():
        raise CommandError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise CommandError(f"{out}: the folder exists and is not empty; use --overwrite to replace "
                               "the decomposition in it")
        if not _index_path(out).is_file():
            raise CommandError(f"{out}: the folder holds files but no decomposition.json; it is not "
                               "replaced, even with --overwrite")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise CommandError(f"{out}: the folder {parent} does not exist")


def _publish_folder(tmp: Path, out: Path) -> None:
    """Put the finished folder ``tmp`` at ``out``: one rename (over an empty folder), or
    two renames and a removal when an old decomposition is replaced."""
    import shutil

    from restorelab.safety import temp_name

    if out.is_dir() and any(out.iterdir()):
        old = temp_name(out)
        os.rename(out, old)
        try:
            os.rename(tmp, out)
        except OSError:
            os.rename(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def _remove_stale_folders(out: Path) -> None:
    import shutil

    from restorelab.safety import stale_temps

    for t in stale_temps(out):
        if t.is_dir() and not t.is_symlink():
            shutil.rmtree(t, ignore_errors=True)


def cmd_decompose(args: argparse.Namespace) -> int:
    """x = fⁿ(x) + Σ r_k: write base and residual layers (float32, unclipped) and a JSON index,
    into a temporary folder renamed to OUTDIR when complete (a killed run leaves no partial set)."""
    import numpy as np

    from restorelab.prior import decompose_job
    from restorelab.safety import temp_name

    check_range("--levels", args.levels, *LEVELS)
    out = check_name(args.outdir)
    _prepare_folder(out, args.overwrite)
    info = _header(args.input)
    px = info.height * info.width
    check_memory(f"decomposing a {info.width}x{info.height} image into {args.levels} layers",
                 px * max(info.channels, 1) * 4 * (args.levels + 4))
    make = _Denoisers(args.method, None, args.param)
    x = _load(args.input)
    ext = ".tif" if args.format == "tiff" else ".npy"
    names = ["base" + ext] + [f"residual_{k:02d}{ext}" for k in range(args.levels)]
    dec = _drive(lambda dev: decompose_job(x, make(dev), args.levels, args.sigma / 255.0), args.device,
                 "decompose", args.quiet)
    den = make.last
    _remove_stale_folders(out)
    tmp = temp_name(out)
    tmp.mkdir()
    try:
        for name, layer in zip(names, [dec.base, *dec.residuals], strict=True):
            _save_float(tmp / name, np.asarray(layer, np.float32), False)
        meta = {
            "method": args.method,
            "params": dict(getattr(den, "values", {})),
            "sigma": args.sigma,
            "levels": args.levels,
            "base": names[0],
            "residuals": names[1:],
            "shape": list(x.shape),
            "formula": "x = base + sum(residuals); r_k = f^k(x) - f^(k+1)(x)",
        }
        write_json(_index_path(tmp), meta, False)
        _publish_folder(tmp, out)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not args.quiet:
        err = float(np.abs(dec.recompose() - x).max())
        print(f"wrote {len(names)} layers to {out} (unit-gain reconstruction error {err:.2e})")
    return 0


def _save_float(path: Path, a: Any, overwrite: bool) -> None:
    """Float32, unclipped: .npy or float TIFF."""
    from restorelab.io import save_image

    save_image(path, a, overwrite=overwrite, bit_depth=32)


def _load(path: str) -> Any:
    from restorelab.io import load_image

    return load_image(path)


def _layer(d: Path, name: Any, what: str) -> Path:
    """The file ``name`` of a decomposition index: a plain file name inside ``d`` that is a
    regular file (no ``../``, no absolute path, no link out of the folder)."""
    if not isinstance(name, str) or not name or name in (".", ".."):
        raise CommandError(f"{_index_path(d)}: {what} must be a file name, got {name!r}")
    if "/" in name or "\\" in name or os.path.isabs(name):
        raise CommandError(f"{_index_path(d)}: {what} {name!r} is not a plain file name inside the folder")
    p = d / name
    real = Path(os.path.realpath(p))
    if real.parent != Path(os.path.realpath(d)):
        raise CommandError(f"{_index_path(d)}: {what} {name!r} leads outside the folder")
    if not p.is_file():
        raise CommandError(f"{p}: {what} is missing or not a regular file")
    return p


def cmd_recompose(args: argparse.Namespace) -> int:
    """x' = base_gain · fⁿ(x) + Σ w_k r_k from a decompose folder."""
    import math

    from restorelab.prior import Decomposition

    d = Path(args.outdir)
    idx = _index_path(d)
    if not idx.is_file():
        raise CommandError(f"{idx} not found: run `restorelab decompose` first")
    out = Path(args.output)
    check_outputs([out], args.overwrite)
    try:
        text = idx.read_text(encoding="utf-8")
        meta = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CommandError(f"{idx}: not a readable JSON decomposition index ({e})") from None
    if not isinstance(meta, dict):
        raise CommandError(f"{idx}: expected a JSON object with 'base' and 'residuals'")
    residual_names = meta.get("residuals")
    if not isinstance(residual_names, list) or not residual_names:
        raise CommandError(f"{idx}: 'residuals' must be a non-empty list of file names")
    check_range("the number of residuals", len(residual_names), *LEVELS)
    base_p = _layer(d, meta.get("base"), "the base layer")
    res_p = [_layer(d, n, f"residual {k}") for k, n in enumerate(residual_names)]
    try:
        gains = [float(g) for g in args.gains.split(",") if g.strip()] if args.gains else []
    except ValueError:
        raise CommandError(f"--gains expects comma-separated numbers, got {args.gains!r}") from None
    n = len(res_p)
    if len(gains) > n:
        raise CommandError(f"{len(gains)} gains given but the decomposition has {n} levels")
    if not all(math.isfinite(g) for g in [*gains, args.base_gain]):
        raise CommandError("--gains and --base-gain must be finite numbers")
    gains += [1.0] * (n - len(gains))
    base = _load(str(base_p))
    res = []
    for p in res_p:
        r = _load(str(p))
        if r.shape != base.shape:
            raise CommandError(f"{p}: the layer's shape {r.shape} differs from the base layer's {base.shape}")
        res.append(r)
    img = Decomposition(base, res).recompose(gains, base_gain=args.base_gain)
    _save(out, img, args.overwrite)
    return 0


def _parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise CommandError(f"--size expects H,W (two integers), got {text!r}") from None
    for v in (h, w):
        check_range("--size", v, *SAMPLE_SIDE, unit="pixels per side")
    return h, w


def cmd_sample(args: argparse.Namespace) -> int:
    """Algorithm 1: unconditional samples of the denoiser's prior."""
    from restorelab.io import max_pixels_limit
    from restorelab.prior import SAMPLER_PARAMS, sample_job

    h, w = _parse_size(args.size)
    vals = _sampler_values(args, SAMPLER_PARAMS)
    K = vals.get("samples", 1)
    out = Path(args.output)
    outs = [out] if (K == 1 or args.grid) else [_suffixed(out, f"_{k}") for k in range(K)]
    check_outputs([*outs, args.log], args.overwrite)
    if h * w > max_pixels_limit():
        raise CommandError(f"--size {h},{w} is over the pixel limit of {max_pixels_limit():,}")
    learned = bool(_denoiser_class(args.method).torch_native)
    check_memory(f"sampling {K} image(s) of {w}x{h}x{args.channels}",
                 sampler_memory(h * w, args.channels, K, learned), hint="give a smaller --size or --samples")
    if h * w * K > SAMPLE_WARN_PIXELS:
        warn(f"sampling {K} x {w}x{h} pixels runs the denoiser on all of them at each of up to "
             f"{vals.get('max_iter', 3000)} iterations; expect a long run (Ctrl-C stops, nothing is written)")
    make = _Denoisers(args.method, args.model, args.param)
    res = _drive(lambda dev: sample_job(make(dev), shape=(h, w), channels=args.channels, device=dev, **vals),
                 args.device, "Algorithm 1", args.quiet)
    if not res.converged:
        warn(res.message)
    if args.grid:
        _save(out, tile(res.samples), args.overwrite)
    else:
        for q, s in zip(outs, res.samples, strict=True):
            _save(q, s, args.overwrite)
    if args.log:
        _write_log(Path(args.log), res, args.overwrite)
    if not args.quiet:
        head = res.message if res.converged else f"not converged after {res.iterations} iterations"
        print(f"{head} ({res.seconds:.1f} s)")
    return 0


def cmd_inverse(args: argparse.Namespace) -> int:
    """Algorithm 2 (or PnP/RED) on the measurements of IN."""
    import numpy as np

    from restorelab.io import load_mask, max_pixels_limit
    from restorelab.prior import INVERSE_PARAMS, inverse_job, operators, pnp_job

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
    if args.mask is not None and args.task != "inpaint":
        raise CommandError("--mask applies to --task inpaint only")
    if args.lowres and args.task != "sr":
        raise CommandError("--lowres applies to --task sr only")
    if args.mask is not None and args.box is not None:
        raise CommandError("give either --mask or --box, not both")
    if args.task == "inpaint" and args.mask is None and args.box is None:
        raise CommandError("--task inpaint needs --mask FILE (white = pixels to fill) or an explicit "
                           "--box SIDE (a centred square hole)")
    if args.task != "inpaint" and (args.mode is not None or args.fill is not None):
        raise CommandError("--mode and --fill apply to --task inpaint only")
    inpaint_mode = (args.mode or "fast") if args.task == "inpaint" and args.solver == "sampler" else None
    check_range("--iters", args.iters, *ITERS)
    vals = _sampler_values(args, INVERSE_PARAMS)
    out = Path(args.output)
    K = vals.get("samples", 1) if args.solver == "sampler" and inpaint_mode in (None, "sample") else 1
    extra = [_suffixed(out, "_std")] + [_suffixed(out, f"_s{k}") for k in range(K)] if K > 1 else []
    check_outputs([out, *extra, args.degraded, args.log], args.overwrite,
                  inputs=[args.input] + ([args.mask] if args.mask else []))
    # sizes from the header: every range is checked before anything is decoded
    info = _header(args.input)
    H, W = info.height, info.width
    s = kw.get("factor", 4)
    if args.task == "sr":
        check_range("--factor", s, *FACTOR)
    if args.lowres:
        H, W = H * s, W * s
        if H * W > max_pixels_limit():
            raise CommandError(f"--factor {s}: the result of {W * s}x{H * s} is over the pixel limit of "
                               f"{max_pixels_limit():,}")
    elif args.task == "sr" and s > min(H, W) // 2:
        raise CommandError(f"--factor {s} leaves less than 2x2 low-resolution pixels of the {W}x{H} image; "
                           f"use a factor of at most {max(1, min(H, W) // 2)}")
    if args.task == "inpaint" and args.mask is None and args.box is not None:
        check_range("--box", args.box, 1, min(H, W) - 1, unit=f"pixels (the image is {W}x{H})")
    channels = 1 if info.channels == 1 else 3
    learned = bool(_denoiser_class(args.method).torch_native)
    check_memory(f"solving a {W}x{H} {args.task} problem with {K} sample(s)",
                 sampler_memory(H * W, channels, K, learned), hint="try a smaller image or fewer --samples")
    mask = load_mask(args.mask, (info.height, info.width)) if args.mask is not None else None
    if mask is not None and not mask.any():
        raise CommandError(f"mask {args.mask} selects nothing to fill (no pixel is at least half white)")
    img = _load(args.input)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    if args.lowres:
        op = operators.make("sr", (H, W), **kw)
        data: Any = op.measurements_from_low_resolution(img)
        if img.ndim == 2:
            data = data.reshape(-1)
    else:
        op = operators.make(args.task, img.shape[:2], mask=mask, **kw)
        data = img
    make = _Denoisers(args.method, args.model, args.param)
    if inpaint_mode is not None:
        return _inpaint(args, img, op, make, vals, inpaint_mode, out, extra, K)
    if args.solver == "sampler":
        res = _drive(lambda dev: inverse_job(make(dev), op, data, device=dev, **vals), args.device,
                     "Algorithm 2", args.quiet)
        if not res.converged:
            warn(res.message)
        if K > 1:
            _save(out, res.mean, args.overwrite)
            _save(extra[0], res.std, args.overwrite)
            for q, s_img in zip(extra[1:], res.samples, strict=True):
                _save(q, s_img, args.overwrite)
        else:
            _save(out, res.samples[0], args.overwrite)
        if args.log:
            _write_log(Path(args.log), res, args.overwrite)
        head = res.message if res.converged else f"not converged after {res.iterations} iterations"
        msg = f"{head}; measurements matched to {res.consistency:.1e} ({res.seconds:.1f} s)"
    else:
        if args.log:
            warn("--log records the sampler's σ_t; the PnP/RED solvers write no log")
        clip = vals.get("clip", False)
        r = _drive(lambda dev: pnp_job(make(dev), op, data, method=args.solver, iters=args.iters, clip=clip,
                                       device=dev), args.device, args.solver, args.quiet)
        _save(out, r.image, args.overwrite)
        msg = f"{args.solver}: {r.iterations} iterations, measurements matched to {r.consistency:.1e}"
    if args.degraded:
        import torch

        xc = data if not isinstance(data, np.ndarray) or data.shape[:2] != op.shape else op.Mt(data)
        degraded = op.M(np.asarray(xc, np.float32)) if not isinstance(xc, torch.Tensor) else op.M(xc).numpy()
        _save(Path(args.degraded), np.clip(degraded, 0, 1), args.overwrite)
    if not args.quiet:
        print(msg)
    return 0


def _inpaint(args: argparse.Namespace, img: Any, op: Any, make: Any, vals: dict[str, Any], mode: str,
             out: Path, extra: list[Path], K: int) -> int:
    """``inverse --task inpaint``: :func:`restorelab.prior.inpaint.inpaint_job` on the mask's regions."""
    import numpy as np

    from restorelab.prior.inpaint import inpaint_job

    hole = ~op.measured
    kw: dict[str, Any] = {"mode": mode}
    if args.fill is not None:
        kw["fill"] = args.fill
    if "seed" in vals:
        kw["seed"] = vals["seed"]
    schedule = {k: v for k, v in vals.items() if k in ("sigma0", "sigma_L", "h0", "beta", "patience")}
    if mode == "sample":
        kw["samples"] = K
        if "max_iter" in vals:
            kw["max_iter"] = vals["max_iter"]
    elif "max_iter" in vals:
        kw["iters"] = vals["max_iter"]
    try:
        res = _drive(
            lambda dev: inpaint_job(img, hole, make(dev), device=dev, schedule=schedule or None, **kw),
            args.device, f"inpaint ({mode})", args.quiet,
        )
    except ValueError as e:
        raise CommandError(str(e)) from None
    _save(out, np.clip(res.image, 0, 1), args.overwrite)
    if mode == "sample" and K > 1:
        std = res.std if res.std is not None else np.zeros(hole.shape, np.float32)
        _save(extra[0], std, args.overwrite)
        for q, s_img in zip(extra[1:], res.samples, strict=True):
            _save(q, np.clip(s_img, 0, 1), args.overwrite)
    if args.log:
        write_csv(Path(args.log), ["t", "sigma_t", "h_t"],
                  [[t, f"{s:.6g}", f"{h:.6g}"] for t, s, h in res.log], args.overwrite)
    if args.degraded:
        deg = np.where(hole[..., None] if img.ndim == 3 else hole, 0.0, img)
        _save(Path(args.degraded), np.clip(deg, 0, 1), args.overwrite)
    if not args.quiet:
        print(res.message)
    return 0


def cmd_bench_inverse(args: argparse.Namespace) -> int:
    """Run :mod:`restorelab.bench.inverse`."""
    from restorelab.bench.inverse import run_bench

    return run_bench(args)
