"""What every command shares: output planning, declared ranges, atomic side files, and
the device fallback while a job runs.

Every command plans all its outputs (image, ``--log``, ``--degraded``, side files, layer
folders) with :func:`check_outputs` *before* it loads a model or computes anything: two
outputs that are the same file (also through a symbolic link) are refused, and so is an
existing file without ``--overwrite``. Every number a user types that sizes work (a size,
a count, a level, a factor, σ) is checked against its declared range with
:func:`check_range` at parse time, and the memory a command needs is compared with
:func:`restorelab.io.memory_budget` by :func:`check_memory` before anything is allocated.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from restorelab.cli import CommandError

__all__ = [
    "SIGMA255",
    "check_outputs",
    "check_name",
    "check_range",
    "check_memory",
    "sigma255",
    "write_csv",
    "write_json",
    "warn",
    "drive",
]

#: σ on the command line: the 0..255 scale of 8-bit images
SIGMA255 = (0.0, 255.0)


def warn(message: str) -> None:
    """One line on stderr: ``restorelab: warning: ...``."""
    print(f"restorelab: warning: {message}", file=sys.stderr)


def check_range(flag: str, value: float, lo: float, hi: float, unit: str = "") -> float:
    """``value`` if ``lo ≤ value ≤ hi`` (and finite), else a one-line :class:`CommandError`
    that states the range."""
    u = f" {unit}" if unit else ""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
        raise CommandError(f"{flag} must be between {lo:g} and {hi:g}{u}, got {value!r}")
    return value


def sigma255(text: str, flag: str = "--sigma") -> float:
    """A noise level typed on the 0..255 scale, checked against :data:`SIGMA255`."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise CommandError(f"{flag} expects a number on the 0..255 scale, got {text!r}") from None
    return check_range(flag, v, *SIGMA255, unit="(0..255 scale)")


def sigma255_type(text: str) -> float:
    """:func:`sigma255` for ``argparse`` ``type=``."""
    try:
        return sigma255(text)
    except CommandError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--sigma ")) from None


def check_memory(what: str, need_bytes: float, *, hint: str = "") -> None:
    """Refuse (one line) work whose estimated memory exceeds the budget
    (:func:`restorelab.io.memory_budget`, ``RESTORELAB_MAX_MEMORY``)."""
    from restorelab.io import memory_budget

    budget = memory_budget()
    if need_bytes > budget:
        more = f"; {hint}" if hint else ""
        raise CommandError(f"{what} needs about {_size(need_bytes)} of memory, over the budget of "
                           f"{_size(budget)} (RESTORELAB_MAX_MEMORY){more}")


def _size(n: float) -> str:
    if n >= 2**40:
        return f"{n / 2**40:.1f} TiB"
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_name(p: Path | str) -> Path:
    """Refuse (one line) a file name over 255 bytes before anything stats it."""
    from restorelab.io import NAME_MAX

    q = Path(p)
    n = len(q.name.encode("utf-8", "surrogateescape"))
    if n > NAME_MAX:
        raise CommandError(f"{q}: the file name is too long ({n} bytes; file systems allow {NAME_MAX})")
    return q


def _identity(p: Path) -> str:
    """The file a path names, through every symbolic link (also a dangling one)."""
    try:
        return os.path.normcase(os.path.realpath(p))
    except OSError:
        return os.path.normcase(os.path.abspath(p))


def check_outputs(
    paths: Iterable[Path | str | None],
    overwrite: bool,
    *,
    inputs: Sequence[Path | str] = (),
    folders: Sequence[Path | str] = (),
) -> list[Path]:
    """Check every output of a command before any work.

    Refused, each with one line naming the path: two outputs that are the same file (same
    resolved path, also through a symbolic link); an output that is one of ``inputs``
    without ``--overwrite``; an output whose folder does not exist; a folder given as a
    file; a name over 255 bytes; an existing file, or a symbolic link to a missing file,
    without ``--overwrite``. ``folders`` are output folders that receive files (they may
    exist); a file output inside one of them collides with it only by name.
    """
    from restorelab.io import ImageError, check_writable

    outs = [check_name(p) for p in paths if p is not None]
    seen: dict[str, Path] = {}
    for p in outs:
        key = _identity(p)
        if key in seen:
            other = seen[key]
            same = "the same path" if str(other) == str(p) else f"the same file as {other}"
            raise CommandError(f"{p}: two outputs would be written to {same}; give them distinct names")
        seen[key] = p
    for f in folders:
        if _identity(Path(f)) in seen:
            raise CommandError(f"{f}: an output file and an output folder have the same name")
    ins = {_identity(Path(i)): Path(i) for i in inputs}
    for p in outs:
        if _identity(p) in ins and not overwrite:
            raise CommandError(f"{p}: is an input of this command; use --overwrite to replace it")
        try:
            check_writable(p, overwrite=overwrite)
        except ImageError as e:
            msg = str(e).replace("use overwrite (--overwrite)", "use --overwrite")
            raise CommandError(msg) from None
    return outs


def write_csv(
    path: Path | str, header: Sequence[str], rows: Iterable[Sequence[Any]], overwrite: bool
) -> Path:
    """Write a CSV file through the one atomic writer (nothing partial on a full disk)."""
    from restorelab.safety import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return atomic_write_text(path, buf.getvalue(), overwrite=overwrite)


def write_json(path: Path | str, data: Any, overwrite: bool) -> Path:
    """Write JSON (indented, UTF-8) through the one atomic writer."""
    from restorelab.safety import atomic_write_text

    return atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", overwrite=overwrite)


def drive(job: Any, bar: Any, on_event: Callable[[Any], None] | None = None) -> Any:
    """Run a job to its end, updating a tqdm ``bar``; a device fallback
    (``restorelab.safety.OOM_KEY``) is announced as one warning line."""
    from restorelab.jobs import run_job
    from restorelab.safety import OOM_KEY

    def on(ev: Any) -> None:
        if OOM_KEY in ev.data:
            bar.clear()
            warn(ev.data[OOM_KEY])
            return
        if on_event is not None:
            on_event(ev)

    return run_job(job, on_progress=on)
