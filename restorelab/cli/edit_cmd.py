"""``restorelab clone``, ``restorelab poisson {flatten,illumination,color,contrast,tile}`` and
``restorelab bench poisson``.

A mask file is any image of the source's size (clone) or the input's size (edits): pixels
at least half white are selected (:func:`restorelab.io.load_mask`). The flags of each edit are generated from
:data:`restorelab.edit.OPERATIONS` (``low_threshold`` → ``--low-threshold``). A 16-bit input
gives a 16-bit output unless ``--bit-depth`` says otherwise.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from restorelab.cli import CommandError
from restorelab.cli.common import check_outputs

__all__ = ["register", "parse_offset"]

_EDITS = {
    "flatten": "texture flattening: keep gradients only on Canny edges",
    "illumination": "local illumination change (Fattal-style gradient compression)",
    "color": "local colour change: scale each channel's gradients",
    "contrast": "contrast enhancement: scale the gradients",
    "tile": "seamless tiling: periodic solve, no seams when tiled",
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_param_flags(p: argparse.ArgumentParser, params: tuple[Any, ...]) -> None:
    for prm in params:
        extra = f" {{{'|'.join(prm.choices)}}}" if prm.choices else ""
        p.add_argument(_flag(prm.name), dest=f"param_{prm.name}", default=None,
                       metavar=prm.kind.__name__.upper(), help=f"{prm.help}{extra} (default {prm.default!r})")


def _param_values(args: argparse.Namespace, params: tuple[Any, ...]) -> dict[str, Any]:
    out = {}
    for prm in params:
        v = getattr(args, f"param_{prm.name}", None)
        if v is not None:
            out[prm.name] = prm.parse(v)
    return out


def _common_out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--bit-depth", type=int, choices=(8, 16, 32), default=None,
                   help="output bit depth (default: 16 for 16-bit inputs, else 8; 32 = float TIFF/.npy)")


def register(sub: argparse._SubParsersAction, bench_sub: argparse._SubParsersAction) -> None:
    """Add ``clone``, ``poisson`` and ``bench poisson``."""
    from restorelab.edit import OPERATIONS

    p = sub.add_parser("clone", help="seamless cloning (Poisson image editing) of SRC into DST")
    p.add_argument("src", metavar="SRC", help="source image")
    p.add_argument("dst", metavar="DST", help="destination image")
    p.add_argument("out", metavar="OUT", help="output image")
    p.add_argument("--mask", required=True,
                   help="mask image of SRC's size; white (at least half of full scale) = cloned")
    p.add_argument("--offset", default="0,0", type=parse_offset, metavar="DY,DX",
                   help="the source pixel (i, j) lands at (i+DY, j+DX) (negative: --offset=-5,10)")
    _add_param_flags(p, OPERATIONS["clone"])
    _common_out(p)
    p.set_defaults(func=cmd_clone)

    pp = sub.add_parser("poisson", help="gradient-domain edits: flatten, illumination, color, contrast, tile")
    psub = pp.add_subparsers(dest="edit", metavar="EDIT", required=True)
    for name, help_text in _EDITS.items():
        q = psub.add_parser(name, help=help_text)
        q.add_argument("input", metavar="IN", help="input image")
        q.add_argument("output", metavar="OUT", help="output image")
        if name != "tile":
            q.add_argument("--mask", default=None,
                           help="mask image of IN's size; white = edited (default: the whole image)")
        _add_param_flags(q, OPERATIONS[name])
        _common_out(q)
        q.set_defaults(func=cmd_poisson, edit=name)

    b = bench_sub.add_parser("poisson",
                             help="Poisson editing: time and exactness vs OpenCV; writes BENCHMARKS.md")
    b.add_argument("--sizes", default="512,1024,2048,4000x3000",
                   help="comma-separated destination sizes: N (N×N) or WxH")
    b.add_argument("--repeat", type=int, default=3, help="timed runs per method (the minimum is reported)")
    b.add_argument("--drag", type=int, default=10, help="drag updates timed per size")
    b.add_argument("--out", default="BENCHMARKS.md", help="markdown file whose poisson section is replaced")
    b.add_argument("--no-write", action="store_true", help="only print the tables")
    b.set_defaults(func=cmd_bench)


def parse_offset(text: str) -> tuple[int, int]:
    """``"DY,DX"`` → (dy, dx)."""
    parts = text.replace(" ", "").split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return int(parts[0]), int(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"offset must be DY,DX (two integers), got {text!r}") from None


def _load_mask(path: str, shape: tuple[int, ...], what: str) -> Any:
    """The mask with the one rule of :func:`restorelab.io.load_mask` (white, at least half
    of full scale, is selected), of ``what``'s size."""
    from restorelab.io import ImageError, load_mask

    try:
        sel = load_mask(path, shape)
    except ImageError as e:
        raise CommandError(str(e).replace("the image", what)) from None
    if not sel.any():
        raise CommandError(f"mask {path} selects nothing (no pixel is at least half white)")
    return sel


def _bit_depth(args: argparse.Namespace, ref_path: str) -> int | None:
    if args.bit_depth is not None:
        return None if args.bit_depth == 8 else args.bit_depth
    from restorelab.io import image_info

    return 16 if image_info(ref_path).bit_depth == 16 else None


def cmd_clone(args: argparse.Namespace) -> int:
    from restorelab.edit import OPERATIONS, seamless_clone
    from restorelab.io import load_image, save_image
    from restorelab.params import resolve_params

    prm = resolve_params(OPERATIONS["clone"], _param_values(args, OPERATIONS["clone"]))
    check_outputs([args.out], args.overwrite, inputs=[args.src, args.dst, args.mask])
    src = load_image(args.src)
    dst = load_image(args.dst)
    mask = _load_mask(args.mask, src.shape, f"SRC {args.src}")
    t0 = time.perf_counter()
    out = seamless_clone(src, dst, mask, args.offset, mode=prm["mode"], solver=prm["solver"])
    dt = time.perf_counter() - t0
    save_image(args.out, out, overwrite=args.overwrite, bit_depth=_bit_depth(args, args.dst))
    print(f"cloned {args.src} into {args.dst} at offset {args.offset} ({prm['mode']}, {dt * 1000:.0f} ms) "
          f"-> {args.out}")
    return 0


def cmd_poisson(args: argparse.Namespace) -> int:
    from restorelab.edit import OPERATIONS, apply
    from restorelab.io import load_image, save_image

    name = args.edit
    values = _param_values(args, OPERATIONS[name])
    mask_path = getattr(args, "mask", None)
    check_outputs([args.output], args.overwrite, inputs=[args.input] + ([mask_path] if mask_path else []))
    img = load_image(args.input)
    mask = None
    if getattr(args, "mask", None):
        mask = _load_mask(args.mask, img.shape, f"IN {args.input}")
    t0 = time.perf_counter()
    out = apply(name, img, mask, **values)
    dt = time.perf_counter() - t0
    save_image(args.output, out, overwrite=args.overwrite, bit_depth=_bit_depth(args, args.input))
    print(f"poisson {name}: {args.input} -> {args.output} ({dt * 1000:.0f} ms)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from restorelab.bench.poisson import parse_sizes, run_benchmark

    if args.repeat < 1:
        raise CommandError("--repeat must be at least 1")
    sizes = parse_sizes(args.sizes)
    run_benchmark(sizes, repeat=args.repeat, drag=args.drag, out=None if args.no_write else args.out)
    return 0
