"""``restorelab methods``, ``restorelab noise``, ``restorelab denoise`` and ``restorelab bench denoise``.

σ is given on the 0..255 scale on the command line (``--sigma 25``) and divided by 255
for the library. ``IN`` may be a file, a folder (its images, sorted) or a glob pattern;
with several inputs ``OUT`` is a folder that receives the same file names.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from pathlib import Path
from typing import Any

from restorelab.cli import CommandError

__all__ = ["register", "parse_param_values", "resolve_inputs", "plan_outputs"]

_GLOB_CHARS = set("*?[")
#: σ handed to a blind method when ``--sigma`` is omitted (0..255 scale): any positive value, it
#: is ignored, but σ = 0 means "nothing to remove" to every denoiser
BLIND_NOMINAL_SIGMA255 = 25.0


def register(sub: argparse._SubParsersAction, bench_sub: argparse._SubParsersAction) -> None:
    """Add the ``methods``, ``noise``, ``denoise`` and ``bench denoise`` sub-commands."""
    p = sub.add_parser("methods", help="list the denoisers and their parameters")
    p.add_argument("names", nargs="*", help="only these methods")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser("noise", help="add seeded Gaussian noise (unclipped in .npy/.tif outputs)")
    p.add_argument("input", metavar="IN", help="image file, folder or glob pattern")
    p.add_argument("output", metavar="OUT", help="output file (or folder for several inputs)")
    p.add_argument("--sigma", type=_sigma255, required=True,
                   help="noise std on the 0..255 scale (0 to 255), e.g. 25")
    p.add_argument("--seed", type=int, default=0, help="random seed (image i of a batch uses seed + i)")
    _common_out(p)
    p.set_defaults(func=cmd_noise)

    p = sub.add_parser("denoise", help="denoise an image, a folder or a glob pattern")
    p.add_argument("input", metavar="IN", help="image file, folder or glob pattern")
    p.add_argument("output", metavar="OUT", help="output file (or folder for several inputs)")
    p.add_argument("--method", "-m", required=True, help="denoiser name (see `restorelab methods`)")
    p.add_argument("--sigma", default=None,
                   help="noise std on the 0..255 scale (e.g. 25), or 'auto' to estimate it per image; "
                   "optional for blind methods (bfcnn), which ignore it")
    p.add_argument("--param", "-p", action="append", default=[], metavar="K=V",
                   help="method parameter (repeatable); see `restorelab methods NAME`")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="torch device")
    _common_out(p)
    p.set_defaults(func=cmd_denoise)

    b = bench_sub.add_parser("denoise", help="PSNR/SSIM/time of every denoiser vs scikit-image, OpenCV, bm3d")
    b.add_argument("--set", dest="set_dir", required=True, help="folder of clean test images (e.g. BSD68)")
    b.add_argument("--sigma", default="15,25,50", help="comma-separated noise levels on the 0..255 scale")
    b.add_argument("--methods", default=None,
                   help="comma-separated restorelab methods (default: every classical one)")
    b.add_argument("--peers", default=None,
                   help="comma-separated peers (default: all of skimage-tv, skimage-wavelet, "
                   "skimage-nlm, cv2-nlm, bm3d that are installed)")
    b.add_argument("--limit", type=int, default=None, help="only the first N images")
    b.add_argument("--seed", type=int, default=0, help="noise seed (image i uses seed + i)")
    b.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="torch device")
    b.add_argument("--out", default="BENCHMARKS.md", help="markdown file whose section is (re)written")
    b.add_argument("--no-write", action="store_true", help="print the table only")
    b.set_defaults(func=cmd_bench_denoise)


def _common_out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--bit-depth", type=int, choices=(8, 16, 32), default=None,
                   help="output depth (default: the input's for PNG/TIFF, float for .npy)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def _sigma255(text: str) -> float:
    from restorelab.cli.common import sigma255_type

    return sigma255_type(text)


# --------------------------------------------------------------------------------------
# methods
# --------------------------------------------------------------------------------------


def cmd_methods(args: argparse.Namespace) -> int:
    """Print every registered denoiser with its parameter declarations."""
    from restorelab import denoise

    classes = denoise.available()
    if args.names:
        classes = [denoise.get_class(n) for n in args.names]
    if not classes:
        print("no denoiser is registered")
        return 1
    for cls in classes:
        flags = [cls.family]
        if cls.iterative:
            flags.append("iterative")
        if cls.torch_native:
            flags.append("torch/CUDA")
        print(f"{cls.name} — {cls.title or cls.__name__} [{', '.join(flags)}]")
        if cls.citation:
            print(f"    {cls.citation}")
        if cls.params:
            for prm in cls.params:
                print(f"    --param {describe_param(prm)}")
        else:
            print("    (no parameters)")
        print()
    return 0


def describe_param(prm: Any) -> str:
    """``Param.describe()``, with σ-like values (default, range) shown ×255 as typed here."""
    if not (prm.sigma_like and prm.kind is float):
        return prm.describe()
    import dataclasses

    d = prm.default
    scaled = dataclasses.replace(
        prm,
        default=(lambda s, f=d: 255.0 * f(s)) if callable(d) else 255.0 * d,
        lo=None if prm.lo is None else float(f"{prm.lo * 255:.6g}"),
        hi=None if prm.hi is None else float(f"{prm.hi * 255:.6g}"),
        unit=(prm.unit + " " if prm.unit else "") + "on the 0..255 scale",
    )
    return scaled.describe()


# --------------------------------------------------------------------------------------
# inputs and outputs
# --------------------------------------------------------------------------------------


def resolve_inputs(spec: str) -> tuple[list[Path], bool]:
    """The input files of ``spec`` (a file, a folder or a glob) and whether it names a batch."""
    from restorelab.cli.common import check_name
    from restorelab.io import is_image_path

    p = check_name(spec)
    if p.is_file() or (os.path.lexists(p) and not p.is_dir()):
        return [p], False  # a FIFO, a device, a dangling link: load_image says what it is
    if p.is_dir():
        files = sorted(f for f in p.iterdir()
                       if f.is_file() and is_image_path(f) and not f.name.startswith("."))
        if not files:
            raise CommandError(f"{spec}: the folder holds no image (.png, .jpg, .tif, .npy)")
        return files, True
    if _GLOB_CHARS & set(spec):
        files = sorted(Path(f) for f in glob.glob(spec) if Path(f).is_file())
        if not files:
            raise CommandError(f"{spec}: no file matches this pattern")
        return files, True
    raise CommandError(f"{spec}: no such file or folder")


def plan_outputs(
    inputs: list[Path], batch: bool, out: str, overwrite: bool, bit_depth: int | None = None
) -> list[Path]:
    """Output paths: ``out`` itself for one file, ``out/<name>`` for a batch (folder created).

    Checked before any work: supported extensions, no clash, nothing replaced without
    ``overwrite``.
    """
    from restorelab.cli.common import check_name, check_outputs
    from restorelab.io import SUPPORTED_EXTENSIONS, is_image_path

    o = check_name(out)
    for f in inputs:
        check_name(o / f.name)
    to_folder = batch or o.is_dir() or out.endswith(("/", "\\"))
    if to_folder:
        if os.path.lexists(o) and not o.is_dir():
            raise CommandError(f"{out}: several inputs need an output folder, and this is a file")
        outs = [o / f.name for f in inputs]
    else:
        outs = [o]
    names = [str(x.resolve()) for x in outs]
    if len(set(names)) != len(names):
        raise CommandError(f"{out}: two inputs have the same file name; give them distinct names")
    for x in outs:
        if not is_image_path(x):
            raise CommandError(f"{x}: unsupported output extension; use {', '.join(SUPPORTED_EXTENSIONS)}")
        ext = x.suffix.lower()
        jpeg = ext in (".jpg", ".jpeg")
        if (bit_depth == 32 and (jpeg or ext == ".png")) or (bit_depth == 16 and jpeg):
            raise CommandError(f"{x}: {ext} cannot store {bit_depth}-bit samples; use .tif or .npy")
    if to_folder:
        try:
            o.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CommandError(f"{out}: cannot create the output folder ({e.strerror or e})") from None
    check_outputs(outs, overwrite, inputs=inputs)
    return outs


def _out_depth(requested: int | None, out: Path, in_depth: int, keep_float: bool) -> int | None:
    """Output bit depth: the requested one, else float for .npy (and .tif when ``keep_float``
    or the input was float), else 16 for PNG/TIFF from a 16-bit input, else 8."""
    if requested is not None:
        return requested
    ext = out.suffix.lower()
    if ext == ".npy":
        return None
    if ext in (".tif", ".tiff"):
        if keep_float or in_depth > 16:
            return 32
        return 16 if in_depth == 16 else 8
    if ext == ".png":
        return 16 if in_depth == 16 else 8
    return 8


def _bar(total: int, desc: str, quiet: bool, leave: bool = True, unit: str = "img") -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=quiet, leave=leave,
                dynamic_ncols=True)


def _run_batch(inputs: list[Path], outs: list[Path], quiet: bool, work: Any) -> int:
    """Apply ``work(i, in, out)`` to each pair; one stderr line per failure; exit 2 if any."""
    from restorelab.io import ImageError
    from restorelab.params import ParamError

    failures = 0
    single = len(inputs) == 1
    with _bar(len(inputs), "images", quiet or single) as bar:
        for i, (src, dst) in enumerate(zip(inputs, outs, strict=True)):
            try:
                work(i, src, dst)
            except (ImageError, ParamError, ValueError, TypeError) as e:
                if single:
                    raise
                failures += 1
                bar.write(f"restorelab: error: {e}", file=sys.stderr)
            bar.update(1)
    if failures:
        raise CommandError(f"{failures} of {len(inputs)} images failed; their outputs were not written")
    return 0


# --------------------------------------------------------------------------------------
# noise
# --------------------------------------------------------------------------------------


def cmd_noise(args: argparse.Namespace) -> int:
    """``y = x + (S/255)·n`` with a seeded generator; unclipped into .npy/.tif, clipped otherwise."""
    from restorelab.io import image_info, load_image, save_image
    from restorelab.noise import add_gaussian_noise

    inputs, batch = resolve_inputs(args.input)
    outs = plan_outputs(inputs, batch, args.output, args.overwrite, args.bit_depth)
    sigma = args.sigma / 255.0

    def work(i: int, src: Path, dst: Path) -> None:
        x = load_image(src)
        y = add_gaussian_noise(x, sigma, seed=args.seed + i)
        depth = _out_depth(args.bit_depth, dst, image_info(src).bit_depth, keep_float=True)
        save_image(dst, y, overwrite=args.overwrite, bit_depth=depth)
        if not batch:
            print(f"wrote {dst} (σ = {args.sigma:g}/255, seed {args.seed + i})")

    return _run_batch(inputs, outs, args.quiet, work)


# --------------------------------------------------------------------------------------
# denoise
# --------------------------------------------------------------------------------------


def parse_param_values(cls: Any, items: list[str]) -> dict[str, Any]:
    """``["k=v", ...]`` → ``{k: parsed v}`` using the method's :class:`~restorelab.params.Param`
    declarations (ParamError for an unknown name or a bad value)."""
    from restorelab.params import ParamError

    decl = {p.name: p for p in cls.params}
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if key not in decl and key.replace("-", "_") in decl:
            key = key.replace("-", "_")
        if not sep or not key:
            raise ParamError(f"--param expects NAME=VALUE, got {item!r}")
        if key not in decl:
            known = ", ".join(decl) or "none"
            raise ParamError(f"method '{cls.name}' has no parameter '{key}'; known: {known}")
        prm = decl[key]
        if prm.sigma_like and prm.kind is float:
            # σ-like values are typed on the 0..255 scale, as everywhere users see them
            try:
                v = float(text) / 255.0
            except ValueError:
                raise ParamError(f"parameter '{key}' expects a number, got {text!r}") from None
            values[key] = prm.coerce(v)
        else:
            values[key] = prm.parse(text.strip())
    return values


def _estimate_sigma(y: Any) -> float:
    """Noise std estimated from the finest wavelet coefficients (Donoho's MAD rule), via
    ``skimage.restoration.estimate_sigma``."""
    from skimage.restoration import estimate_sigma

    kw = {"channel_axis": -1} if y.ndim == 3 else {}
    img = y[..., :3] if y.ndim == 3 else y
    return float(estimate_sigma(img, average_sigmas=True, **kw))


def cmd_denoise(args: argparse.Namespace) -> int:
    """Run one registered denoiser over the inputs (iterative ones through ``run_job``)."""
    from restorelab import denoise
    from restorelab.cli.common import drive
    from restorelab.device import cuda_available
    from restorelab.io import image_info, load_image, save_image
    from restorelab.safety import oom_fallback_job

    try:
        cls = denoise.get_class(args.method)
    except KeyError as e:
        raise CommandError(e.args[0]) from None
    values = parse_param_values(cls, args.param)
    if args.device == "cuda" and not cuda_available():
        raise CommandError("--device cuda: no CUDA device is available; use --device cpu or auto")
    blind_default = args.sigma is None
    if blind_default and not cls.blind:
        raise CommandError(f"--sigma is required for {cls.name} (it is not blind): give the noise level on "
                           "the 0..255 scale, e.g. 25, or 'auto' to estimate it")
    auto = not blind_default and str(args.sigma).strip().lower() == "auto"
    sig255 = BLIND_NOMINAL_SIGMA255
    if not auto and not blind_default:
        try:
            sig255 = _sigma255(args.sigma)
        except argparse.ArgumentTypeError as e:
            raise CommandError(f"--sigma: {e}") from None
    inputs, batch = resolve_inputs(args.input)
    outs = plan_outputs(inputs, batch, args.output, args.overwrite, args.bit_depth)
    made: dict[str, Any] = {}

    def make_denoiser(dev: str) -> Any:
        if dev not in made:
            made.clear()  # a denoiser on a device that ran out of memory is let go first
            made[dev] = denoise.get(args.method, device=dev, **values)
        return made[dev]

    if args.device == "cpu" or not cls.torch_native:
        make_denoiser(args.device)  # the parameters are checked once, before any image is read
    show_steps = cls.iterative and not args.quiet

    def work(i: int, src: Path, dst: Path) -> None:
        y = load_image(src)
        s = _estimate_sigma(y) if auto else sig255 / 255.0
        t0 = time.perf_counter()
        with _bar(0, f"{cls.name} {src.name}", not show_steps, leave=False, unit="it") as bar:

            def on_progress(ev: Any) -> None:
                if ev.total and bar.total != ev.total:
                    bar.total = ev.total
                bar.n = ev.step
                if ev.message:
                    bar.set_postfix_str(ev.message, refresh=False)
                bar.refresh()

            if cls.torch_native:
                job = oom_fallback_job(lambda dev: make_denoiser(dev).job(y, s), args.device)
            else:
                job = make_denoiser(args.device).job(y, s)
            x = drive(job, bar, on_progress)
        dt = time.perf_counter() - t0
        depth = _out_depth(args.bit_depth, dst, image_info(src).bit_depth, keep_float=False)
        save_image(dst, x, overwrite=args.overwrite, bit_depth=depth)
        if not batch:
            est = " (estimated)" if auto else ""
            what = "blind" if blind_default else f"σ = {s * 255:.2f}/255{est}"
            print(f"wrote {dst} ({cls.name}, {what}, {dt:.2f} s)")

    return _run_batch(inputs, outs, args.quiet, work)


# --------------------------------------------------------------------------------------
# bench denoise
# --------------------------------------------------------------------------------------


def _csv(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return items


def cmd_bench_denoise(args: argparse.Namespace) -> int:
    """``restorelab bench denoise``: see :func:`restorelab.bench.denoise.run_benchmark`."""
    from restorelab.bench.denoise import run_benchmark

    try:
        sigmas = [float(s) for s in _csv(args.sigma) or []]
    except ValueError:
        raise CommandError(f"--sigma expects comma-separated numbers, got {args.sigma!r}") from None
    if not sigmas or any(not (0 < s < 1000) for s in sigmas):
        raise CommandError(f"--sigma expects positive noise levels on the 0..255 scale, got {args.sigma!r}")
    if args.limit is not None and args.limit < 1:
        raise CommandError("--limit must be >= 1")
    cmd = ["restorelab", "bench", "denoise", "--set", args.set_dir,
           "--sigma", ",".join(f"{s:g}" for s in sigmas)]
    if args.methods:
        cmd += ["--methods", args.methods]
    if args.peers is not None:
        cmd += ["--peers", args.peers]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    cmd += ["--seed", str(args.seed)]
    if args.device != "auto":
        cmd += ["--device", args.device]
    import shlex

    run_benchmark(
        args.set_dir,
        sigmas,
        methods=_csv(args.methods),
        peers=_csv(args.peers),
        limit=args.limit,
        seed=args.seed,
        device=args.device,
        out=None if args.no_write else args.out,
        command=shlex.join(cmd),
    )
    return 0
