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
import warnings
from collections.abc import Sequence
from typing import Any

__all__ = ["main", "build_parser", "CommandError"]

#: command-group modules; each defines ``register(sub, bench_sub)``
_GROUPS = (
    "restorelab.cli.denoise_cmd",
    "restorelab.cli.train_cmd",
    "restorelab.cli.indi_cmd",
    "restorelab.cli.edit_cmd",
    "restorelab.cli.prior_cmd",
    "restorelab.cli.ship_cmd",
    "restorelab.cli.app_cmd",
    "restorelab.bench.cost",
    "restorelab.bench.inpaint",
    "restorelab.cli.analyze_cmd",
    "restorelab.cli.experiment_cmd",
)


class CommandError(Exception):
    """A user error: printed as one line, exit code 2."""


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy", ".bmp")


def _wants_gui(args: list[str]) -> bool:
    """True when the command line opens the window (no command, ``gui``, or an image path)."""
    if not args or args[0] in ("gui", "--self-test"):
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


def _quiet_libraries() -> None:
    """Keep stderr to one line per message: restorelab's own warnings are printed as
    ``restorelab: warning: ...``; those of libraries (tifffile, scikit-image, torch) and
    their log records below ERROR are dropped, unless ``RESTORELAB_DEBUG`` is set."""
    import logging
    import os

    if os.environ.get("RESTORELAB_DEBUG"):
        return
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def show(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: Any = None) -> None:
        if os.path.abspath(filename).startswith(pkg + os.sep):
            text = " ".join(str(message).split())
            print(f"restorelab: warning: {text}", file=sys.stderr)

    warnings.showwarning = show
    warnings.simplefilter("default")

    class _OneLine(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.name.startswith("restorelab") and record.levelno >= logging.WARNING:
                print(f"restorelab: warning: {' '.join(record.getMessage().split())}", file=sys.stderr)

    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(_OneLine())
    for name in ("tifffile", "PIL", "skimage", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror and e.filename:
        return f"{e.filename}: {e.strerror}"
    text = str(e).strip() or type(e).__name__
    return " ".join(text.split("\n")[0].split()) if isinstance(e, OSError | MemoryError) else text


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``restorelab`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    # fast start of the window: only the gui command group is built (no torch import here)
    parser = build_parser(["restorelab.cli.app_cmd"] if _wants_gui(args_list) else None)
    known = set()
    for action in parser._subparsers._group_actions if parser._subparsers else []:  # noqa: SLF001
        known.update(getattr(action, "choices", {}) or {})
    top_level = {"-h", "--help", "--version"}
    if not args_list or (args_list[0] not in known and args_list[0] not in top_level):
        args_list = ["gui", *args_list]  # an image or an option of the window (e.g. --self-test)
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():  # the display below is undone for in-process callers
            if args.command != "gui":
                _quiet_libraries()
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("restorelab: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"restorelab: error: {msg}", file=sys.stderr)
        return 2
    except MemoryError as e:
        detail = f" ({_one_line(e)})" if str(e) else ""
        print(f"restorelab: error: out of memory{detail}; try a smaller image or fewer samples",
              file=sys.stderr)
        return 1
    except (RuntimeError, OSError) as e:
        print(f"restorelab: error: {_one_line(e)}", file=sys.stderr)
        return 1
