"""``restorelab bench cost``: measured run time of every denoiser beside its declared cost.

Each :class:`~restorelab.denoise.base.Denoiser` declares ``cost_s_per_mp``, the seconds it
needs per megapixel of a colour image on one CPU core at its default parameters (σ = 25/255).
The GUI's live preview trusts that declaration (:func:`restorelab.denoise.base.preview_ok`),
so this command checks it: every registered denoiser runs on the same noisy 256² colour crop
(scikit-image's astronaut, Gaussian noise σ = 25/255), one thread for torch, OpenCV and BLAS,
after a warm-up call on a small image (model loading, allocator and kernel caches are not
counted); the best of ``--repeats`` runs is converted to s/MP and compared with the declared
value as a ratio. A ratio outside [1/tolerance, tolerance] is flagged and makes the command
exit with status 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CostRow", "measure_cost", "cost_table", "register"]


@dataclass
class CostRow:
    name: str
    declared_s_per_mp: float
    measured_s_per_mp: float
    seconds: float

    @property
    def ratio(self) -> float:
        """measured / declared."""
        return self.measured_s_per_mp / self.declared_s_per_mp

    def ok(self, tolerance: float) -> bool:
        return 1.0 / tolerance <= self.ratio <= tolerance


def _test_image(size: int) -> np.ndarray:
    from skimage import data

    x = data.astronaut().astype(np.float32) / 255.0
    h, w = x.shape[:2]
    s = min(size, h, w)
    crop = x[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    y = crop + np.random.default_rng(0).normal(0.0, 25 / 255, crop.shape).astype(np.float32)
    return np.ascontiguousarray(y)


class _one_thread:
    """Torch, OpenCV and (through threadpoolctl when installed) BLAS on one thread."""

    def __enter__(self) -> _one_thread:
        import torch

        self._torch = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            import cv2

            self._cv2 = cv2.getNumThreads()
            cv2.setNumThreads(1)
        except ImportError:  # pragma: no cover
            self._cv2 = None
        try:
            from threadpoolctl import threadpool_limits

            self._blas: Any = threadpool_limits(1)
        except ImportError:  # pragma: no cover
            self._blas = None
        return self

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self._torch)
        if self._cv2 is not None:
            import cv2

            cv2.setNumThreads(self._cv2)
        if self._blas is not None:
            self._blas.restore_original_limits()


def measure_cost(names: Sequence[str] | None = None, size: int = 256, repeats: int = 3) -> list[CostRow]:
    """Time each denoiser (default: all registered) on a noisy ``size``² colour crop."""
    from restorelab import denoise

    y = _test_image(size)
    mp = y.shape[0] * y.shape[1] / 1e6
    rows = []
    with _one_thread():
        for name in names or denoise.names():
            d = denoise.get(name, device="cpu")
            d(y[:32, :32], 25 / 255)  # warm-up: weights, caches
            best = float("inf")
            for _ in range(max(1, repeats)):
                t0 = time.perf_counter()
                d(y, 25 / 255)
                best = min(best, time.perf_counter() - t0)
            # the declaration is per megapixel of a colour image: the measured image is colour
            rows.append(CostRow(name, type(d).cost_s_per_mp, best / mp, best))
    return rows


def cost_table(rows: Sequence[CostRow], tolerance: float) -> tuple[list[str], list[list[str]]]:
    header = ["method", "declared s/MP", "measured s/MP", "measured / declared", "256² colour (s)", "tier"]
    body = [[r.name, f"{r.declared_s_per_mp:.3g}", f"{r.measured_s_per_mp:.3g}", f"{r.ratio:.2f}",
             f"{r.seconds:.3f}", "ok" if r.ok(tolerance) else "OFF"] for r in rows]
    return header, body


def _run(args: argparse.Namespace) -> int:
    from restorelab.bench.report import machine_line, markdown_table, write_section

    if not args.tolerance > 1:
        raise ValueError(f"--tolerance must be > 1, got {args.tolerance}")
    if args.size < 32:
        raise ValueError(f"--size must be at least 32, got {args.size}")
    names = [n.strip() for n in args.methods.split(",") if n.strip()] if args.methods else None
    print(f"cost: timing {', '.join(names) if names else 'every denoiser'} on a {args.size}² colour crop, "
          "one thread ...", file=sys.stderr)
    rows = measure_cost(names, size=args.size, repeats=args.repeats)
    header, body = cost_table(rows, args.tolerance)
    table = markdown_table(header, body)
    print(table)
    off = [r.name for r in rows if not r.ok(args.tolerance)]
    if args.out:
        md = (f"`{_command(args)}` — each denoiser at its default parameters on the same "
              f"noisy {args.size}² colour crop (astronaut, σ = 25/255), one thread, best of {args.repeats}, "
              "after a warm-up. *declared* is the class's `cost_s_per_mp`, which the GUI's live preview "
              f"uses (a method runs live when its estimate is under 0.25 s); a ratio outside "
              f"[1/{args.tolerance:g}, {args.tolerance:g}] is marked OFF.\n\n{table}\n\n"
              f"Machine: {machine_line()}")
        write_section(args.out, "cost", md, title="Declared cost of each denoiser")
        print(f"wrote the cost section of {args.out}", file=sys.stderr)
    if off:
        print(f"declared cost off by more than {args.tolerance:g}x: {', '.join(off)}", file=sys.stderr)
        return 1
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run."""
    opts = [f"--methods {args.methods}" if args.methods else "",
            f"--size {args.size}" if args.size != 256 else "",
            f"--repeats {args.repeats}" if args.repeats != 3 else ""]
    return " ".join(["restorelab bench cost", *filter(None, opts)])


def register(sub: argparse._SubParsersAction, bench_sub: argparse._SubParsersAction) -> None:
    """Add ``restorelab bench cost`` (``sub`` is unused: no top-level command)."""
    p = bench_sub.add_parser("cost", help="time every denoiser on a 256² colour crop: measured vs declared")
    p.add_argument("--methods", default=None, help="comma-separated denoisers (default: all registered)")
    p.add_argument("--size", type=int, default=256, help="side of the colour crop (default 256)")
    p.add_argument("--repeats", type=int, default=3, help="runs per method; the fastest counts (default 3)")
    p.add_argument("--tolerance", type=float, default=3.0,
                   help="flag a measured/declared ratio outside [1/t, t] and exit 1 (default 3)")
    p.add_argument("--out", default="BENCHMARKS.md", help="markdown file to update ('' = none)")
    p.set_defaults(func=_run)

