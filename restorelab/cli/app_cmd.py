"""``restorelab gui [IMAGE]`` (also ``restorelab`` and ``restorelab IMAGE``)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction, bench_sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the desktop application (default when no command is given)")
    p.add_argument("image", nargs="?", help="image to open (default: the built-in sample)")
    p.add_argument("--self-test", action="store_true", help="run a headless self-test and exit")
    p.set_defaults(func=run)

    p = bench_sub.add_parser("gui-stalls", help="worst GUI-thread stall per window action on a large photo")
    p.add_argument("--width", type=int, default=6000)
    p.add_argument("--height", type=int, default=4000)
    p.add_argument("--out", default="BENCHMARKS.md", help="markdown file to update (default BENCHMARKS.md)")
    p.set_defaults(func=_stalls)


def _stalls(args: argparse.Namespace) -> int:
    from restorelab.gui.bench.stalls import main

    return main(["--width", str(args.width), "--height", str(args.height), "--out", args.out])


def run(args: argparse.Namespace) -> int:
    try:
        from restorelab.gui.app import main as gui_main
    except ImportError as e:  # Qt is missing or cannot load
        if args.self_test:
            from restorelab.selftest import run as selftest_run

            print(f"restorelab: the desktop application is unavailable ({e}); running the headless self-test")
            return selftest_run(args.image)
        print(f"restorelab: the desktop application is unavailable ({e}); running the headless demo")
        return _headless_demo(args.image)
    return gui_main(args.image, self_test=args.self_test)


def _headless_demo(image: str | None) -> int:
    from restorelab import denoise
    from restorelab.io import load_image
    from restorelab.resources import sample_path

    path = image or str(sample_path())
    y = load_image(path)
    for name in denoise.names():
        if name == "bfcnn":
            continue
        x = denoise.get(name)(y, 25 / 255)
        print(f"{name:>14}: denoised {path} -> mean {float(x.mean()):.4f}")
    return 0
