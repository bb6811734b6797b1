"""``restorelab bench train-speed``: training throughput of each step path, and its agreement with eager.

The same network (same seed) is trained for a few steps with every requested path of
:class:`restorelab.models.train.TrainStep`: eager, ``torch.compile`` modes
(``default``, ``reduce-overhead`` = CUDA graphs, ``max-autotune``) and ``aot_eager``. Patches
and noise are drawn on the device exactly as ``restorelab train`` does (device sampler over a
stack of random images; the content does not change the cost), bf16 autocast and
channels-last on CUDA, fused Adam, the EMA update included. The warm-up steps (where the
compilation happens) are not timed; the timed steps end with one device synchronisation.
Effective TFLOP/s = patches/s × patch² × MACs/pixel × 6 (forward + two backward products,
2 FLOPs per multiply-add; :mod:`restorelab.models.flops`). Agreement: from the same
weights and the same batch, the largest difference of the loss gradient to the eager
one relative to the largest eager gradient entry (the gradient, not the Adam update:
Adam's first step is about lr·sign(g) and turns rounding in near-zero gradients into
full-size differences). On CUDA both run under bf16 autocast, so agreement is at bf16
precision (about 1e-2), not float32's.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from restorelab.bench.report import machine_line, markdown_table, write_section

__all__ = ["bench_train_speed"]


def bench_train_speed(
    *,
    modes: list[str],
    device: str = "auto",
    arch: str = "bfunet",
    depth: int = 4,
    width: int = 32,
    channels: int = 1,
    patch: int = 64,
    batch: int = 256,
    steps: int = 50,
    warmup: int = 5,
    loss: str = "charbonnier",
    out: str | None = "BENCHMARKS.md",
) -> list[dict[str, Any]]:
    """Patches/s, TFLOP/s and agreement with eager of each training-step path; one row per mode."""
    import numpy as np
    import torch

    from restorelab.device import device_name, resolve_device
    from restorelab.models.flops import macs_per_pixel
    from restorelab.models.nets import build_model
    from restorelab.models.train import TorchPatchSampler, TrainConfig, TrainStep, make_optimizer, noisy_batch

    if steps < 1 or warmup < 1:
        raise ValueError("--steps and --warmup must be >= 1")
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    proto = build_model(arch, channels, depth, width)
    mpp = macs_per_pixel(proto, patch)
    rng = np.random.default_rng(0)
    size = max(2 * patch, 128)
    images = [rng.integers(0, 256, (channels, size, size), dtype=np.uint8) for _ in range(16)]
    cfg_base = dict(data=["synthetic"], out="unused.safetensors", channels=channels, batch=batch, patch=patch)

    def setup(mode: str) -> tuple[Any, Any, Any]:
        model = copy.deepcopy(proto).to(dev)
        if cuda:
            model = model.to(memory_format=torch.channels_last)
        ema = copy.deepcopy(model)
        for p in ema.parameters():
            p.requires_grad_(False)
        opt, _ = make_optimizer(model.parameters(), 1e-3, dev)
        cfg = TrainConfig(**cfg_base, loss=loss, compile=mode)  # type: ignore[arg-type]
        return model, TrainStep(model, opt, ema, cfg, dev), cfg

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    # agreement: gradients from the same weights on the same batch
    g = torch.Generator().manual_seed(1)
    sampler0 = TorchPatchSampler(images, patch, True, dev, seed=0)
    y0, n0 = noisy_batch(sampler0, TrainConfig(**cfg_base), g, dev)  # type: ignore[arg-type]
    after: dict[str, list[Any]] = {}
    rows: list[dict[str, Any]] = []
    for mode in modes:
        model, step, cfg = setup(mode)
        step(y0, n0, 0.0, 0.0)  # lr 0: the gradients of the first (compiling) call, weights kept
        after[mode] = [p.grad.detach().clone() for p in model.parameters()]
        sampler = TorchPatchSampler(images, patch, True, dev, seed=0)
        gen = torch.Generator().manual_seed(0)
        for _ in range(warmup):
            y, n = noisy_batch(sampler, cfg, gen, dev)
            step(y, n, 1e-3, 0.999)
        sync()
        t0 = time.perf_counter()
        acc = torch.zeros((), device=dev)
        for _ in range(steps):
            y, n = noisy_batch(sampler, cfg, gen, dev)
            acc += step(y, n, 1e-3, 0.999)
        sync()
        dt = time.perf_counter() - t0
        pps = steps * batch / dt
        rows.append(
            {
                "mode": step.mode if not step.note else f"{mode} → eager (compile failed)",
                "patches_per_s": pps,
                "tflops": pps * patch * patch * mpp * 6 / 1e12,
                "ms_per_step": dt / steps * 1e3,
                "note": step.note,
            }
        )
    ref = after.get("none")
    for r, mode in zip(rows, modes, strict=True):
        if ref is None or mode == "none":
            r["agreement"] = float("nan") if ref is None else 0.0
            continue
        scale = max(float(a.abs().max()) for a in ref)
        diff = max(float((a - b).abs().max()) for a, b in zip(after[mode], ref, strict=True))
        r["agreement"] = diff / max(scale, 1e-30)
    base = rows[0]["patches_per_s"]
    for r in rows:
        print(
            f"{r['mode']:>16s}: {r['patches_per_s']:10.1f} patches/s ({r['patches_per_s'] / base:.2f}x), "
            f"{r['tflops']:.3g} TFLOP/s, {r['ms_per_step']:.1f} ms/step, "
            f"max |g - g_eager| / max |g_eager| = {r['agreement']:.1e}"
            + (f"  [{r['note']}]" if r["note"] else "")
        )
    if out:
        table = markdown_table(
            [
                "step path",
                "patches/s",
                f"× {rows[0]['mode']}",
                "TFLOP/s",
                "ms/step",
                "gradient vs eager (max abs diff ÷ max abs)",
            ],
            [
                [
                    r["mode"],
                    f"{r['patches_per_s']:.1f}",
                    f"{r['patches_per_s'] / base:.2f}",
                    f"{r['tflops']:.3g}",
                    f"{r['ms_per_step']:.1f}",
                    f"{r['agreement']:.1e}",
                ]
                for r in rows
            ],
        )
        cmd = (
            f"restorelab bench train-speed --modes {','.join(modes)} --arch {arch} --depth {depth} "
            f"--width {width} --channels {channels} --patch {patch} --batch {batch} --steps {steps} "
            f"--warmup {warmup} --loss {loss}" + (f" --device {device}" if device != "auto" else "")
        )
        text = (
            f"Training step of a {arch} (depth {depth}, width {width}, {channels} channel(s), "
            f"{mpp / 1e3:.1f} k MACs/pixel) on {device_name(dev)}, {batch} patches of {patch}² per step, "
            f"{loss} loss, fused Adam + EMA; {steps} timed steps after {warmup} untimed ones; TFLOP/s = "
            f"patches/s × patch² × MACs/pixel × 6.\n\n{table}\n\n`{cmd}` — {machine_line()}\n"
        )
        write_section(out, f"train-speed-{dev.type}", text, title=f"Training throughput ({dev.type})")
    return rows
