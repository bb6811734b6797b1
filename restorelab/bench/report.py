"""Write one section of BENCHMARKS.md, leaving the other sections as they are."""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["markdown_table", "write_section", "machine_line"]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table; floats are printed as given (format them first)."""
    h = "| " + " | ".join(str(c) for c in header) + " |"
    sep = "|" + "|".join("---" for _ in header) + "|"
    body = ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join([h, sep, *body])


def machine_line() -> str:
    """Where a benchmark ran: CPU count, platform, torch device."""
    try:
        import torch

        dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        tv = torch.__version__
    except Exception:  # pragma: no cover
        dev, tv = "no torch", "-"
    return (
        f"{os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}, "
        f"torch {tv}, {dev}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def write_section(path: str | os.PathLike, key: str, markdown: str, title: str | None = None) -> None:
    """Replace (or append) the section ``key`` of a markdown file, atomically.

    Sections are delimited by ``<!-- bench:KEY -->`` and ``<!-- /bench:KEY -->``.
    """
    p = Path(path)
    header = (
        "# Benchmarks\n\nEvery figure here is printed by a `restorelab bench ...` command; "
        "rerun it to reproduce.\n"
    )
    old = p.read_text(encoding="utf-8") if p.exists() else header
    start, end = f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"
    block = f"{start}\n" + (f"## {title}\n\n" if title else "") + markdown.rstrip() + f"\n{end}"
    pat = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    new = pat.sub(lambda _m: block, old) if pat.search(old) else old.rstrip() + "\n\n" + block + "\n"
    from restorelab.safety import atomic_write_text

    atomic_write_text(p, new)
