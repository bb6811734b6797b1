"""Training of an InDI network (Delbracio & Milanfar, TMLR 2023, Algorithm 1).

For each batch: clean patches x (random crops with the 8 flips/rotations, from the same
image folders, hold-out, sampler and seeds as the denoiser training of
:mod:`restorelab.models.train`), degraded on the fly y = D(x) with freshly drawn parameters
(:mod:`restorelab.indi.degrade`; blur patches are cut with a margin so the kernel never
sees a patch border), times t ~ U(0, 1], the path point x_t = (1 − t) x + t y + t ε η, and
the loss ‖F_θ(x_t, t) − x‖² (the MMSE target E[x | x_t] that the restoration update needs).
Adam with the denoiser's warm-up + cosine schedule and time budget, the denoiser's
exponential moving average of the weights (the EMA copy is validated and shipped: the
average of the noisy iterates is the better estimate, which matters most on short CPU
runs), its loss choice (``l2``, ``l1``, ``charbonnier`` on F − x), checkpoints that a later
run resumes exactly, and a held-out validation: the PSNR of the degraded input and of the
N = 1 answer F(y, 1) on centre crops with fixed degradations.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import time
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from restorelab.indi.degrade import DEGRADATIONS, apply, draw, margin
from restorelab.indi.net import IndiNet, build_indi
from restorelab.indi.weights import save_indi
from restorelab.jobs import Progress
from restorelab.models.nets import BFBatchNorm2d
from restorelab.models.train import (
    PatchSampler,
    TrainConfig,
    _center_crop,
    _psnr,
    _run_dir,
    _save_ckpt,
    ema_decay_at,
    ema_update,
    load_image_set,
    lr_at,
    read_checkpoint,
    residual_loss,
)

__all__ = ["IndiTrainConfig", "indi_batch", "recommended_eps", "train_indi_job", "validate_indi"]


@dataclass
class IndiTrainConfig(TrainConfig):
    """A :class:`~restorelab.models.train.TrainConfig` plus the InDI fields."""

    degradation: str = "blur"
    #: noise level ε of the path (x_t += t ε η), on the [0, 1] scale. Half an 8-bit grey level:
    #: enough to make the path's density smooth, small against every degradation's error. At
    #: 0.01 the N = 1 answer starts 0.26 dB below a q10–40 JPEG input (the network must first
    #: learn to remove the added noise); in 5-minute proxies at width 32, ε = 0 reached +0.06 dB
    #: over the input where ε = 0.01 stayed 0.17 dB below it.
    eps: float = 0.002
    #: fraction of each batch trained at t = 1 exactly (the rest at t ~ U(0, 1]). The N = 1
    #: answer F(y, 1) is the hardest point of the path and, under U(0, 1], the rarest: a small
    #: network spends its capacity on t < 1, where part of the clean image is still visible.
    t_one: float = 0.0


def recommended_eps(degradation: str) -> float:
    """The path noise ε to train ``degradation`` with: none for JPEG, the default otherwise.

    JPEG's learnable part is a few per cent of its error, and noise added to the N = 1 input
    costs more than that (at ε = 0.01 the answer starts 0.26 dB below a q10–40 input); blur and
    SR are not invertible, and a small ε keeps the path's density smooth.
    """
    return 0.0 if degradation == "jpeg" else IndiTrainConfig.eps


def indi_batch(
    sampler: PatchSampler, cfg: IndiTrainConfig, rng: np.random.Generator, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_t, t, x) for one batch: see the module docstring. Draws only from ``rng`` and ``gen``."""
    m = margin(cfg.degradation)
    big = sampler.batch(cfg.batch)  # (B, C, p + 2m, p + 2m)
    xs, ys = [], []
    for b in range(big.shape[0]):
        img = big[b].transpose(1, 2, 0)
        y = apply(cfg.degradation, img, draw(cfg.degradation, rng))
        sl = (slice(m, img.shape[0] - m), slice(m, img.shape[1] - m))
        xs.append(img[sl])
        ys.append(y[sl])
    x = torch.from_numpy(np.stack(xs).transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(np.stack(ys).transpose(0, 3, 1, 2).copy()).float()
    t = 1.0 - torch.rand(x.shape[0], generator=gen)  # U(0, 1]
    if cfg.t_one > 0:
        t = torch.where(torch.rand(x.shape[0], generator=gen) < cfg.t_one, torch.ones_like(t), t)
    tv = t.view(-1, 1, 1, 1)
    noise = torch.randn(x.shape, generator=gen) * (cfg.eps * tv)
    return (1 - tv) * x + tv * y + noise, t, x


def _val_pairs(val: list[np.ndarray], cfg: IndiTrainConfig, mult: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed (clean, degraded) centre crops, degradation drawn from seed 1234 + i."""
    pairs = []
    for i, a in enumerate(val):
        x = _center_crop(a, cfg.val_crop, mult).transpose(1, 2, 0)
        y = apply(cfg.degradation, x, draw(cfg.degradation, np.random.default_rng(1234 + i)))
        pairs.append((x, y.astype(np.float32)))
    return pairs


@torch.no_grad()
def validate_indi(
    model: IndiNet, pairs: list[tuple[np.ndarray, np.ndarray]], eps: float, device: torch.device
) -> dict[str, float]:
    """Mean PSNR (dB) of the degraded inputs and of the N = 1 answer F(y + ε η, 1), fixed η."""
    was = model.training
    model.eval()
    g = torch.Generator().manual_seed(4321)
    inp, out = [], []
    for x, y in pairs:
        xt = torch.from_numpy(x).permute(2, 0, 1)[None]
        yt = torch.from_numpy(y).permute(2, 0, 1)[None]
        y1 = yt + eps * torch.randn(yt.shape, generator=g)
        f = model(y1.to(device), 1.0).float().cpu().clamp(0, 1)
        inp.append(_psnr(xt, yt))
        out.append(_psnr(xt, f))
    model.train(was)
    return {"input": float(np.mean(inp)), "N1": float(np.mean(out))}


@torch.no_grad()
def _recalibrate(
    model: IndiNet, make_batch: Callable[[], tuple[torch.Tensor, ...]], batches: int
) -> None:
    """Set each norm's running SD to its mean batch SD over ``batches`` fresh batches (as
    :func:`restorelab.models.train.recalibrate` does for the denoisers)."""
    bns = [m for m in model.modules() if isinstance(m, BFBatchNorm2d)]
    if not bns or batches <= 0:
        return
    sums = [torch.zeros_like(b.running_sd) for b in bns]

    def hook(i: int) -> Any:
        def h(mod: BFBatchNorm2d, inp: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
            sums[i] += torch.sqrt(inp[0].float().var(dim=(0, 2, 3), unbiased=False) + mod.eps)

        return h

    handles = [b.register_forward_hook(hook(i)) for i, b in enumerate(bns)]
    was = model.training
    model.train()
    try:
        for _ in range(batches):
            xt, t = make_batch()
            model(xt, t)
    finally:
        for hd in handles:
            hd.remove()
        model.train(was)
    for b, s in zip(bns, sums, strict=True):
        b.running_sd.copy_(s / batches)


def train_indi_job(cfg: IndiTrainConfig) -> Generator[Progress, None, dict[str, Any]]:
    """Train an InDI network; yields progress, returns a summary (best validation, paths).

    Writes ``RUN/last.ckpt`` (resumable), ``RUN/best.safetensors``, ``RUN/log.csv`` and
    finally ``cfg.out`` (the best-by-validation weights).
    """
    from restorelab.device import resolve_device

    if cfg.degradation not in DEGRADATIONS:
        raise ValueError(f"--degradation must be one of {', '.join(DEGRADATIONS)}, got {cfg.degradation!r}")
    if not 0 <= cfg.eps < 0.5:
        raise ValueError(f"--eps must be in [0, 0.5), got {cfg.eps}")
    if not 0.0 <= cfg.t_one <= 1.0:
        raise ValueError(f"--t-one must be in [0, 1], got {cfg.t_one}")
    if cfg.batch < 1 or cfg.patch < 8 or cfg.lr <= 0:
        raise ValueError("batch must be >= 1, patch >= 8 and lr > 0")
    if not 0 <= cfg.ema < 1:
        raise ValueError(f"ema decay must be in [0, 1), got {cfg.ema}")
    device = resolve_device(cfg.device)
    if cfg.threads and cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    images = load_image_set(cfg.data, 3)
    if cfg.val:
        val, train_imgs = load_image_set(cfg.val, 3), images
    else:
        n_hold = max(1, int(round(len(images) * cfg.holdout))) if len(images) > 1 else 0
        hold = set(np.linspace(0, len(images) - 1, n_hold).round().astype(int).tolist()) if n_hold else set()
        val = [images[i] for i in sorted(hold)]
        train_imgs = [im for i, im in enumerate(images) if i not in hold]
    if len(val) > cfg.val_count:
        val = [val[i] for i in np.linspace(0, len(val) - 1, cfg.val_count).round().astype(int)]
    model = build_indi(3, cfg.depth, cfg.width).to(device)
    for mod in model.modules():
        if isinstance(mod, BFBatchNorm2d):
            mod.momentum = cfg.bn_momentum
    ema = copy.deepcopy(model)
    for p_ in ema.parameters():
        p_.requires_grad_(False)
    if cfg.patch % model.multiple or (cfg.degradation == "sr4" and cfg.patch % 4):
        raise ValueError(f"--patch must be a multiple of {max(model.multiple, 4)}")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    total = int(cfg.steps)
    step, best, best_step, elapsed0 = 0, -math.inf, 0, 0.0
    run = _run_dir(cfg)
    run.mkdir(parents=True, exist_ok=True)
    if cfg.resume:
        ck = read_checkpoint(cfg.resume, model)
        old = json.loads(ck["config"])
        if old.get("degradation") != cfg.degradation:
            raise ValueError(f"{cfg.resume}: checkpoint was trained for {old.get('degradation')!r}, "
                             f"not {cfg.degradation!r}")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optim"])
        ema.load_state_dict(ck["ema"] if "ema" in ck else ck["model"])
        step, best, best_step = int(ck["step"]), float(ck["best"]), int(ck["best_step"])
        rng.bit_generator.state = json.loads(ck["np_rng"])
        gen.set_state(ck["torch_rng"])
        elapsed0 = float(ck.get("elapsed", 0.0))
    augment = True if cfg.augment is None else cfg.augment
    sampler = PatchSampler(train_imgs, cfg.patch + 2 * margin(cfg.degradation), augment, rng)
    pairs = _val_pairs(val, cfg, model.multiple)
    model.train()
    log_path = run / "log.csv"
    new_log = not log_path.exists() or not cfg.resume
    logf = open(log_path, "w" if new_log else "a", newline="")
    log = csv.writer(logf)
    if new_log:
        log.writerow(["step", "lr", "loss", "patches_per_s", "val_psnr_input", "val_psnr_N1"])
    meta = {"patch": cfg.patch, "batch": cfg.batch, "lr": cfg.lr, "seed": cfg.seed, "ema": cfg.ema,
            "loss": cfg.loss, "t_one": cfg.t_one,
            "data": ", ".join(f"{Path(d).parent.name}/{Path(d).name}" for d in cfg.data),
            "command": cfg.command, "val_images": len(pairs), "val_crop": cfg.val_crop}
    t0 = time.perf_counter()
    t_last, n_last, loss_acc, loss_n = t0, 0, 0.0, 0
    last_val: dict[str, float] = {}
    stopped_early = False
    try:
        while step < total:
            elapsed = elapsed0 + time.perf_counter() - t0
            time_frac = elapsed / (60 * cfg.max_minutes) if cfg.max_minutes else 0.0
            lr = lr_at(step, max(step / max(1, total), time_frac), cfg, total)
            for gp in opt.param_groups:
                gp["lr"] = lr
            xt, t, x = indi_batch(sampler, cfg, rng, gen)
            loss = residual_loss(model(xt.to(device), t.to(device)).float(), x.to(device), cfg.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ema_update(ema, model, ema_decay_at(step, cfg.ema))
            step += 1
            loss_acc += float(loss.detach())
            loss_n += 1
            n_last += cfg.batch
            done = step >= total
            if cfg.max_minutes is not None and elapsed0 + time.perf_counter() - t0 > 60 * cfg.max_minutes:
                done, stopped_early = True, True
            if cfg.stop_at_step is not None and step >= cfg.stop_at_step:
                done, stopped_early = True, True
            if step % cfg.val_every == 0 or done:
                pps = n_last / max(1e-9, time.perf_counter() - t_last)
                if cfg.recal_batches > 0:
                    r_rng = np.random.default_rng(cfg.seed * 1000003 + step)
                    r_gen = torch.Generator().manual_seed(cfg.seed * 1000003 + step)
                    saved = sampler.rng
                    sampler.rng = r_rng

                    def fresh(r: Any = r_rng, g: Any = r_gen) -> tuple[torch.Tensor, ...]:
                        return tuple(a.to(device) for a in indi_batch(sampler, cfg, r, g)[:2])

                    try:
                        _recalibrate(ema, fresh, cfg.recal_batches)
                    finally:
                        sampler.rng = saved
                last_val = validate_indi(ema, pairs, cfg.eps, device) if pairs else {}
                msg = f"step {step}/{total} lr {lr:.2e} loss {loss_acc / loss_n:.3e} {pps:.1f} patches/s"
                if last_val:
                    msg += f" | val PSNR input {last_val['input']:.2f} N=1 {last_val['N1']:.2f}"
                log.writerow([step, f"{lr:.4g}", f"{loss_acc / loss_n:.5g}", f"{pps:.2f}",
                              f"{last_val.get('input', float('nan')):.3f}",
                              f"{last_val.get('N1', float('nan')):.3f}"])
                logf.flush()
                score = last_val.get("N1", -math.inf)
                if score > best or not last_val:
                    best, best_step = score, step
                    minutes = round((elapsed0 + time.perf_counter() - t0) / 60, 2)
                    save_indi(run / "best.safetensors", ema, cfg.degradation, cfg.eps,
                              {**meta, "steps": step, "minutes": minutes,
                               "val_psnr": {k: round(v, 3) for k, v in last_val.items()}})
                    msg += " (best)"
                _save_ckpt(run / "last.ckpt", {
                    "model": model.state_dict(),
                    "optim": opt.state_dict(),
                    "ema": ema.state_dict(),
                    "step": step,
                    "np_rng": json.dumps(rng.bit_generator.state),
                    "torch_rng": gen.get_state(),
                    "best": best,
                    "best_step": best_step,
                    "elapsed": elapsed0 + time.perf_counter() - t0,
                    "config": json.dumps({k: v for k, v in asdict(cfg).items() if k != "extra"}),
                    "model_config": json.dumps(model.config()),
                })
                yield Progress(step, total, message=msg, data={"val": last_val, "loss": loss_acc / loss_n,
                                                               "patches_per_s": pps, "lr": lr})
                loss_acc, loss_n, t_last, n_last = 0.0, 0, time.perf_counter(), 0
                if done:
                    break
            elif step % 10 == 0:
                yield Progress(step, total, message=f"loss {loss_acc / loss_n:.3e}",
                               data={"loss": loss_acc / loss_n})
    finally:
        logf.close()
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes((run / "best.safetensors").read_bytes())
    return {"out": str(out), "run_dir": str(run), "best_val": best, "best_step": best_step, "step": step,
            "last_val": last_val, "stopped_early": stopped_early, "seconds": time.perf_counter() - t0,
            "total_steps": total}
