"""The ``restorelab`` command.

``restorelab`` alone opens the desktop application on the built-in sample image,
``restorelab IMAGE`` opens that image, ``restorelab COMMAND ...`` runs a command-line
tool. Each command group lives in its own module here and adds its sub-parsers through
``register(subparsers, bench_subparsers)``; every bad input ends in one clear line on
stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser", "CommandError"]

#: command-group modules; each defines ``register(sub, bench_sub)``
_GROUPS = (
    "restorelab.cli.denoise_cmd",
    "restorelab.cli.train_cmd",
    "restorelab.cli.edit_cmd",
    "restorelab.cli.prior_cmd",
    "restorelab.cli.ship_cmd",
    "restorelab.cli.app_cmd",
    "restorelab.cli.analyze_cmd",
    "restorelab.cli.experiment_cmd",
)


class CommandError(Exception):
    """A user error: printed as one line, exit code 2."""


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy", ".bmp")


def _wants_gui(args: list[str]) -> bool:
    """True when the command line opens the window (no command, ``gui``, or an image path)."""
    if not args or args[0] == "gui":
        return True
    first = args[0]
    return not first.startswith("-") and first.lower().endswith(_IMAGE_SUFFIXES)


def build_parser(groups: Sequence[str] | None = None) -> argparse.ArgumentParser:
    from restorelab import __version__

    parser = argparse.ArgumentParser(
        prog="restorelab",
        description="Image restoration built on denoisers. Without a command, opens the application.",
    )
    parser.add_argument("--version", action="version", version=f"restorelab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench = sub.add_parser("bench", help="benchmarks against OpenCV, scikit-image, bm3d; write BENCHMARKS.md")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    for mod in _GROUPS if groups is None else groups:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
            continue
        m.register(sub, bench_sub)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    from restorelab.params import ParamError

    errs: list[type[BaseException]] = [CommandError, ParamError, FileNotFoundError, FileExistsError,
                                       PermissionError, IsADirectoryError, KeyError, ValueError, TypeError]
    try:
        from restorelab.io import ImageError

        errs.insert(0, ImageError)
    except ImportError:  # pragma: no cover
        pass
    from restorelab.jobs import Cancelled

    errs.append(Cancelled)
    return tuple(errs)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``restorelab`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    # fast start of the window: only the gui command group is built (no torch import here)
    parser = build_parser(["restorelab.cli.app_cmd"] if _wants_gui(args_list) else None)
    known = set()
    for action in parser._subparsers._group_actions if parser._subparsers else []:  # noqa: SLF001
        known.update(getattr(action, "choices", {}) or {})
    if not args_list or (args_list[0] not in known and not args_list[0].startswith("-")):
        args_list = ["gui", *args_list]
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("restorelab: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"restorelab: error: {msg}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"restorelab: error: {e}", file=sys.stderr)
        return 1
