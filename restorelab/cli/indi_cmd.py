"""``restorelab restore --indi``, ``restorelab bench indi`` and the ``train --task indi`` driver.

``restorelab restore IN OUT --indi blur|sr4|jpeg --steps N [--seed S] [--trajectory DIR]``
restores one image, a folder or a glob pattern (like ``denoise``: several inputs need an
output folder, every output is planned and checked before any work, files are written
atomically) by N steps of Inversion by Direct Iteration (Delbracio & Milanfar 2023).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from restorelab.cli import CommandError

__all__ = ["register", "train_indi", "cmd_restore", "cmd_bench_indi"]

_DEGS = ("blur", "sr4", "jpeg")


def register(sub: argparse._SubParsersAction, bench_sub: argparse._SubParsersAction) -> None:
    """Add ``restore`` and ``bench indi``."""
    p = sub.add_parser("restore", help="restore blur, 4x low resolution or JPEG artefacts (InDI)",
                       description="Restore by Inversion by Direct Iteration (Delbracio & Milanfar 2023): "
                       "N small steps from the degraded image (t = 1) to the restored one (t = 0).")
    p.add_argument("input", metavar="IN", help="image file, folder or glob pattern")
    p.add_argument("output", metavar="OUT", help="output file (or folder for several inputs)")
    p.add_argument("--indi", required=True, choices=_DEGS, metavar="{blur,sr4,jpeg}",
                   help="the degradation to undo (sr4: an image up-scaled 4x, at its final size)")
    p.add_argument("--steps", type=int, default=10,
                   help="N, 1..200: 1 = one regression step (best PSNR, soft), more = more detail")
    p.add_argument("--seed", type=int, default=0, help="seed of the starting noise (image i uses seed + i)")
    p.add_argument("--trajectory", default=None, metavar="DIR",
                   help="also write every x_t as DIR/<name>_t<k>.png (k = 0 is t = 1, the input)")
    p.add_argument("--model", default=None, help="weights file (default: the shipped model)")
    p.add_argument("--tile", type=int, default=None, help="tile core size in px (default 512; 0 = none)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="torch device")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--bit-depth", type=int, choices=(8, 16, 32), default=None,
                   help="output depth (default: the input's for PNG/TIFF, float for .npy)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_restore)

    b = bench_sub.add_parser("indi", help="InDI at N = 1..20 steps vs Wiener, Richardson-Lucy, "
                             "bicubic, Algorithm 2, JPEG")
    b.add_argument("--set", dest="set_dir", required=True, help="folder of clean held-out images")
    b.add_argument("--degradations", default="blur,sr4,jpeg", help="comma-separated subset of blur,sr4,jpeg")
    b.add_argument("--steps", default="1,2,5,10,20", help="comma-separated N")
    b.add_argument("--limit", type=int, default=4, help="use the first N images (0 = all)")
    b.add_argument("--crop", type=int, default=64, help="centre crop side in px (multiple of 4)")
    b.add_argument("--alg2-iters", type=int, default=200, help="iteration cap of Algorithm 2 (0 = skip it)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--models", default=None, metavar="DIR",
                   help="folder of indi_<degradation>.safetensors (default: the shipped models)")
    b.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    b.add_argument("--out", default="BENCHMARKS.md", help="markdown file whose section is (re)written")
    b.add_argument("--no-write", action="store_true", help="print the table only")
    b.set_defaults(func=cmd_bench_indi)

    r = bench_sub.add_parser("indi-recipe", help="InDI training choices (the t = 1 share) at equal steps",
                             description="Train the InDI network per degradation and --t-one value for the "
                             "same steps and compare the held-out N = 1 validation.")
    r.add_argument("--data", required=True, nargs="+", help="training image folder(s) (5%% held out)")
    r.add_argument("--degradations", default="blur,sr4", help="comma-separated subset of blur,sr4,jpeg")
    r.add_argument("--t-one", dest="t_ones", default="0,0.5", help="comma-separated t = 1 shares in [0, 1]")
    r.add_argument("--steps", type=int, default=2000, help="training steps per configuration")
    r.add_argument("--width", type=int, default=16)
    r.add_argument("--depth", type=int, default=3)
    r.add_argument("--batch", type=int, default=16)
    r.add_argument("--patch", type=int, default=48)
    r.add_argument("--lr", type=float, default=3e-4, help="peak learning rate")
    r.add_argument("--val-every", type=int, default=250)
    r.add_argument("--val-crop", type=int, default=96, help="side of the held-out validation crops")
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", default="docs/training/indi_recipe.md",
                   help="markdown file whose indi-recipe section is (re)written ('' = print only)")
    r.set_defaults(func=_bench_indi_recipe)

    g = bench_sub.add_parser("indi-gui", help="the InDI dock on a large photo: progress, GUI stalls, cancel")
    g.add_argument("--image", default=None, help="a photo (default: a synthetic --width x --height image)")
    g.add_argument("--width", type=int, default=4000)
    g.add_argument("--height", type=int, default=3000)
    g.add_argument("--degradation", choices=_DEGS, default="jpeg")
    g.add_argument("--steps", type=int, default=2)
    g.add_argument("--tiles", type=int, default=15, help="cancel after this many progress events")
    g.add_argument("--finish", action="store_true", help="let the run end instead of cancelling it")
    g.add_argument("--out", default=None,
                   help="also write the indi-gui-cancel (or -finish) section of this markdown file")
    g.set_defaults(func=_bench_indi_gui)


def _bench_indi_recipe(args: argparse.Namespace) -> int:
    from restorelab.bench.indi_recipe import bench_indi_recipe

    try:
        t_ones = [float(v) for v in args.t_ones.split(",") if v.strip()]
    except ValueError as e:
        raise CommandError(f"--t-one: {e}") from None
    try:
        bench_indi_recipe(
            list(args.data), degradations=[d.strip() for d in args.degradations.split(",") if d.strip()],
            t_ones=t_ones, steps=args.steps, width=args.width, depth=args.depth, batch=args.batch,
            patch=args.patch, lr=args.lr, val_every=args.val_every, val_crop=args.val_crop,
            threads=args.threads, seed=args.seed,
            out=args.out or None,
            command="restorelab bench " + " ".join(shlex.quote(a) for a in sys.argv[2:]),
        )
    except ValueError as e:
        raise CommandError(str(e)) from None
    return 0


# --------------------------------------------------------------------------------------- train
def train_indi(args: argparse.Namespace) -> int:
    """``restorelab train --task indi``: see :func:`restorelab.indi.train.train_indi_job`."""
    from tqdm import tqdm

    from restorelab.indi.train import IndiTrainConfig, train_indi_job

    if args.degradation is None:
        raise CommandError("--task indi needs --degradation blur, sr4 or jpeg")
    if not str(args.out).endswith(".safetensors"):
        raise CommandError("--out must be a .safetensors file")
    cfg = IndiTrainConfig(
        data=list(args.data), out=args.out, channels=3, arch="bfunet",
        depth=args.depth, width=args.width, steps=args.steps if args.steps is not None else 1000,
        batch=args.batch, patch=args.patch, lr=args.lr, warmup=args.warmup, bn_momentum=args.bn_momentum,
        recal_batches=min(args.recal_batches, 20), device=args.device, seed=args.seed, resume=args.resume,
        val=args.val, val_every=args.val_every, val_crop=args.val_crop,
        augment=False if args.no_augment else None, run_dir=args.run_dir, threads=args.threads,
        max_minutes=args.max_minutes, degradation=args.degradation, ema=args.ema, loss=args.loss,
        stop_at_step=args.stop_at_step,
        **({"eps": args.eps} if args.eps is not None else {}),
        **({"t_one": args.t_one} if args.t_one is not None else {}),
        command="restorelab train " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        if len(sys.argv) > 1 and sys.argv[1] == "train" else "",
    )
    job = train_indi_job(cfg)
    bar = tqdm(total=None, disable=args.quiet, mininterval=1.0 if sys.stderr.isatty() else 60.0,
               unit="step", dynamic_ncols=True)
    try:
        while True:
            try:
                ev = next(job)
            except StopIteration as stop:
                summary = stop.value
                break
            if bar.total is None and ev.total:
                bar.total = ev.total
            bar.n = ev.step
            bar.set_postfix_str(ev.message[:60], refresh=False)
            bar.update(0)
            if "val" in ev.data:
                (tqdm.write if not args.quiet else print)(ev.message)
                sys.stdout.flush()
    finally:
        bar.close()
        job.close()
    print(f"wrote {summary['out']} (best validation at step {summary['best_step']}, "
          f"{summary['step']} steps, {summary['seconds']:.0f} s; run dir {summary['run_dir']})")
    return 0


# ------------------------------------------------------------------------------------- restore
def cmd_restore(args: argparse.Namespace) -> int:
    """Restore every input by N InDI steps (see the module docstring)."""
    from restorelab.cli.common import check_outputs, drive
    from restorelab.cli.denoise_cmd import _bar, _out_depth, _run_batch, plan_outputs, resolve_inputs
    from restorelab.device import cuda_available
    from restorelab.indi.restore import RESTORE_PARAMS, load_for, restore_job
    from restorelab.io import image_info, load_image, save_image
    from restorelab.params import resolve_params

    resolve_params(RESTORE_PARAMS, {"steps": args.steps, "seed": args.seed,
                                    **({"tile": args.tile} if args.tile is not None else {})})
    if args.device == "cuda" and not cuda_available():
        raise CommandError("--device cuda: no CUDA device is available; use --device cpu or auto")
    inputs, batch = resolve_inputs(args.input)
    outs = plan_outputs(inputs, batch, args.output, args.overwrite, args.bit_depth)
    traj_dir = Path(args.trajectory) if args.trajectory else None
    if traj_dir is not None:
        if traj_dir.exists() and not traj_dir.is_dir():
            raise CommandError(f"{traj_dir}: --trajectory needs a folder, and this is a file")
        try:
            traj_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CommandError(f"{traj_dir}: cannot create the folder ({e.strerror or e})") from None
        frames = [traj_dir / f"{src.stem}_t{k:03d}.png" for src in inputs for k in range(args.steps + 1)]
        check_outputs([*outs, *frames], args.overwrite, inputs=inputs, folders=[traj_dir])
    load_for(args.indi, args.model, "cpu")  # a missing or bad model fails before any image is read

    def work(i: int, src: Path, dst: Path) -> None:
        y = load_image(src)
        t0 = time.perf_counter()
        with _bar(0, f"InDI {args.indi} {src.name}", args.quiet, leave=False, unit="tile") as bar:

            def on_progress(ev: Any) -> None:
                if ev.total and bar.total != ev.total:
                    bar.total = ev.total
                bar.n = ev.step
                bar.set_postfix_str(ev.message, refresh=False)
                bar.refresh()
                if traj_dir is not None and ev.preview is not None:
                    k = int(ev.data["index"])
                    save_image(traj_dir / f"{src.stem}_t{k:03d}.png", ev.preview, overwrite=True, bit_depth=8)

            if traj_dir is not None:
                save_image(traj_dir / f"{src.stem}_t000.png", y, overwrite=True, bit_depth=8)
            job = restore_job(y, args.indi, args.steps, seed=args.seed + i, device=args.device,
                              model=args.model, tile=args.tile, keep_trajectory=False)
            res = drive(job, bar, on_progress)
        depth = _out_depth(args.bit_depth, dst, image_info(src).bit_depth, keep_float=False)
        save_image(dst, res.image, overwrite=args.overwrite, bit_depth=depth)
        if not batch:
            print(f"wrote {dst} (InDI {args.indi}, N = {args.steps}, seed {args.seed + i}, "
                  f"{time.perf_counter() - t0:.2f} s)")

    return _run_batch(inputs, outs, args.quiet, work)


# --------------------------------------------------------------------------------------- bench
def _bench_indi_gui(args: argparse.Namespace) -> int:
    from restorelab.gui.bench.indi import run

    return run(args)


def cmd_bench_indi(args: argparse.Namespace) -> int:
    """``restorelab bench indi``: see :func:`restorelab.bench.indi.run_bench`."""
    from restorelab.bench.indi import run_bench

    degs = [d.strip() for d in args.degradations.split(",") if d.strip()]
    bad = [d for d in degs if d not in _DEGS]
    if bad or not degs:
        raise CommandError(f"--degradations expects some of {', '.join(_DEGS)}, got {args.degradations!r}")
    try:
        steps = [int(s) for s in args.steps.split(",") if s.strip()]
    except ValueError:
        raise CommandError(f"--steps expects comma-separated integers, got {args.steps!r}") from None
    if not steps or any(not 1 <= s <= 200 for s in steps):
        raise CommandError("--steps must be between 1 and 200")
    if args.crop < 16 or args.crop % 4:
        raise CommandError("--crop must be a multiple of 4, at least 16")
    cmd = ["restorelab", "bench", "indi", "--set", args.set_dir, "--degradations", ",".join(degs),
           "--steps", ",".join(map(str, steps)), "--limit", str(args.limit), "--crop", str(args.crop),
           "--alg2-iters", str(args.alg2_iters), "--seed", str(args.seed)]
    if args.models:
        cmd += ["--models", args.models]
    if args.device != "auto":
        cmd += ["--device", args.device]
    run_bench(args.set_dir, degs, steps, limit=args.limit, crop=args.crop, alg2_iters=args.alg2_iters,
              seed=args.seed, device=args.device, out=None if args.no_write else args.out,
              command=shlex.join(cmd), models=args.models)
    return 0
