"""Benchmarks of the learned bias-free denoiser: PSNR on a test set, folded vs plain speed."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from restorelab.bench.report import machine_line, markdown_table, write_section

__all__ = ["bench_psnr", "bench_speed"]

_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy")


def _write_locked(path: str, key: str, text: str, title: str) -> None:
    """write_section under an exclusive lock (benchmarks run side by side keep each other's sections)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        write_section(path, key, text, title=title)
        return

    lock = Path(path).resolve().parent / (".lock-" + Path(path).name)
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            write_section(path, key, text, title=title)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    lock.unlink(missing_ok=True)


def _load(f: Path) -> np.ndarray:
    from restorelab.io import load_image

    im = load_image(f)
    return im[:, :, :3] if im.ndim == 3 and im.shape[2] == 4 else im


def _one_sigma(
    files: list[Path], s: float, model: str, device: str, seed: int, threads: int
) -> dict[str, float]:
    """Mean PSNR/SSIM of the clipped estimate over ``files`` at σ = s (0..255); image i uses seed + i."""
    import torch

    from restorelab import denoise
    from restorelab.metrics import psnr, ssim
    from restorelab.noise import add_gaussian_noise

    if threads:
        torch.set_num_threads(threads)
    den = denoise.get("bfcnn", device=device, model=model)
    ps, ss, pn, ts = [], [], [], []
    for i, f in enumerate(files):
        x = _load(f)
        y = add_gaussian_noise(x, s / 255.0, seed=seed + i).astype(np.float32)
        t0 = time.perf_counter()
        xh = den(y, s / 255.0)
        ts.append(time.perf_counter() - t0)
        xh = np.clip(xh, 0.0, 1.0)
        ps.append(psnr(x, xh))
        ss.append(ssim(x, xh))
        pn.append(psnr(x, y))
    return {
        "noisy": float(np.mean(pn)),
        "psnr": float(np.mean(ps)),
        "ssim": float(np.mean(ss)),
        "seconds": float(np.median(ts)),
    }


def bench_psnr(
    set_dir: str,
    sigmas: list[float],
    *,
    model: str = "auto",
    device: str = "auto",
    limit: int = 0,
    seed: int = 0,
    out: str | None = "BENCHMARKS.md",
    card: str | None = None,
    jobs: int = 1,
) -> dict[float, dict[str, float]]:
    """Mean PSNR/SSIM of x̂ = y − f(y) (clipped to [0, 1]) on every image of ``set_dir``.

    Image i at noise level σ gets unclipped Gaussian noise with seed ``seed + i`` (σ on 0..255).
    The model is blind: σ is not given to it. Writes a section of ``out`` and of ``card``.
    """
    from restorelab.denoise.bfcnn import model_path
    from restorelab.models.weights import read_metadata

    d = Path(set_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"test set folder not found: {d}")
    files = sorted(f for f in d.iterdir() if f.suffix.lower() in _EXTS)
    if limit:
        files = files[:limit]
    if not files:
        raise ValueError(f"no images in {d}")
    if not sigmas or any(s < 0 for s in sigmas):
        raise ValueError("--sigma needs non-negative noise levels")
    channels = 3 if _load(files[0]).ndim == 3 else 1
    mpath = model_path(model, channels)
    md = read_metadata(mpath)
    if jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(
            max_workers=min(jobs, len(sigmas)), mp_context=mp.get_context("spawn")
        ) as ex:
            futs = [ex.submit(_one_sigma, files, float(s), str(mpath), device, seed, 1) for s in sigmas]
            results = [f.result() for f in futs]
    else:
        results = [_one_sigma(files, float(s), str(mpath), device, seed, 0) for s in sigmas]
    res: dict[float, dict[str, float]] = {}
    for s, r in zip(sigmas, results, strict=True):
        res[float(s)] = r
        print(
            f"sigma {s:g}: noisy {r['noisy']:.2f} dB -> bfcnn {r['psnr']:.2f} dB, "
            f"SSIM {r['ssim']:.4f}, {r['seconds']:.2f} s/image",
            flush=True,
        )
    rows = [
        [f"{s:g}", f"{r['noisy']:.2f}", f"{r['psnr']:.2f}", f"{r['ssim']:.4f}", f"{r['seconds']:.2f}"]
        for s, r in res.items()
    ]
    table = markdown_table(["σ (0..255)", "noisy PSNR", "BF PSNR (dB)", "SSIM", "s/image"], rows)
    cmd = f"restorelab bench bfcnn --set {set_dir} --sigma {','.join(f'{s:g}' for s in sigmas)}"
    if model != "auto":
        cmd += f" --model {model}"
    if limit:
        cmd += f" --limit {limit}"
    text = (
        f"Model `{mpath.name}`: {md.get('arch')} depth {md.get('depth')} width {md.get('width')}, "
        f"{md.get('channels')} channel(s), trained on σ ∈ [{md.get('sigma_min')}, {md.get('sigma_max')}] "
        f"for {md.get('steps')} steps. Test set `{d.name}` ({len(files)} images), unclipped Gaussian noise "
        f"(seed {seed} + image index), one blind model for every σ, output clipped to [0, 1].\n\n"
        f"{table}\n\n`{cmd}` — {machine_line()}\n"
    )
    key = f"bfcnn-{d.name}-{mpath.stem}"
    if out:
        _write_locked(out, key, text, f"Learned bias-free denoiser on {d.name} ({mpath.stem})")
    if card:
        _write_locked(card, key, text, f"PSNR on {d.name}")
    return res


def _time_interleaved(nets: list[Any], dev: Any, y: Any, repeats: int) -> list[dict[str, Any]]:
    """Median times of the plain forward and the folded fast path of each network on ``y``.

    The repeats are interleaved (every path of every network once per round, after one
    untimed warm-up round), so a change of machine load during the run hits all paths
    alike and their ratios stay fair on a shared machine.
    """
    import torch

    from restorelab.models.infer import FastDenoiser

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    paths = []
    for net in nets:
        plain = net.to(dev).eval()
        fast = FastDenoiser(net, dev, precision="auto", tile=0, auto_tile_pixels=1 << 40)
        paths.append((plain, fast))
    times: list[dict[str, list[float]]] = [{"plain": [], "fast": []} for _ in nets]
    out: list[dict[str, Any]] = []
    with torch.inference_mode():
        for rnd in range(max(1, repeats) + 1):
            for k, (plain, fast) in enumerate(paths):
                for key, fn in (("plain", plain), ("fast", fast.residual)):
                    sync()
                    t0 = time.perf_counter()
                    fn(y)
                    sync()
                    if rnd:
                        times[k][key].append(time.perf_counter() - t0)
        for (plain, fast), t in zip(paths, times, strict=True):
            diff = float((plain(y).float() - fast.residual(y).float()).abs().max())
            out.append(
                {
                    "plain_s": statistics.median(t["plain"]),
                    "fast_s": statistics.median(t["fast"]),
                    "max_diff": diff,
                    "dtype": fast.dtype,
                }
            )
    return out


def bench_speed(
    *,
    size: int = 1024,
    model: str = "auto",
    channels: int = 1,
    device: str = "auto",
    repeats: int = 3,
    reference: bool = True,
    threads: int = 0,
    out: str | None = "BENCHMARKS.md",
) -> dict[str, float]:
    """Time the plain module forward (unfolded, float32) against the folded/fast path on one input.

    Both run under ``torch.inference_mode`` on the same (1, C, size, size) input; reports
    the median of ``repeats`` interleaved runs after one warm-up and the max difference of
    the outputs. ``threads`` > 0 sets torch's CPU threads (0 keeps its default).
    With ``reference`` the 20-layer, 64-channel BF-CNN of Mohan et al. (2020) (randomly
    initialised: its time does not depend on its weights) is timed the same way in the same
    run, and ``ratio_vs_reference`` = fast time of the model ÷ fast time of that BF-CNN.
    Effective TFLOP/s = 2 × MACs/pixel × pixels ÷ time (convolutions only, see
    :mod:`restorelab.models.flops`).
    """
    import torch

    from restorelab.denoise.bfcnn import model_path
    from restorelab.device import device_name, resolve_device
    from restorelab.models.flops import macs_per_pixel
    from restorelab.models.nets import build_model
    from restorelab.models.weights import load_model

    if size < 16:
        raise ValueError("--size must be >= 16")
    dev = resolve_device(device)
    try:
        path = model_path(model, channels)
        net, _ = load_model(path, "cpu")
        label = path.name
    except FileNotFoundError:
        if model != "auto":
            raise
        net = build_model("bfcnn", channels).eval()
        label = "untrained bfcnn 20x64 (no shipped weights)"
    g = torch.Generator().manual_seed(0)
    y = torch.rand(1, net.channels, size, size, generator=g).to(dev)
    nets = [(label, net)]
    if reference:
        torch.manual_seed(0)
        nets.append(
            ("BF-CNN 20×64 reference (random init)", build_model("bfcnn", net.channels, 20, 64).eval())
        )
    if threads > 0:
        torch.set_num_threads(threads)
    macs = [macs_per_pixel(n, 64) for _, n in nets]
    res = _time_interleaved([n for _, n in nets], dev, y, repeats)
    for r, (name, _), mpp in zip(res, nets, macs, strict=True):
        r.update(name=name, macs=mpp, tflops=2 * mpp * size * size / r["fast_s"] / 1e12)
    m = res[0]
    speedup = m["plain_s"] / m["fast_s"]
    ratio = m["fast_s"] / res[1]["fast_s"] if reference else float("nan")
    for r in res:
        print(
            f"{r['name']} on {device_name(dev)}, {size}x{size}: plain {r['plain_s'] * 1e3:.1f} ms, "
            f"folded/fast ({r['dtype']}) {r['fast_s'] * 1e3:.1f} ms, "
            f"speed-up x{r['plain_s'] / r['fast_s']:.2f}, "
            f"{r['macs'] / 1e3:.1f} k MACs/pixel, {r['tflops']:.3g} TFLOP/s, max |diff| {r['max_diff']:.2e}"
        )
    if reference:
        print(f"time of {label} / BF-CNN 20x64 (fast paths): {ratio:.3f} (goal <= 0.5)")
    if out:
        rows = [
            [
                r["name"],
                device_name(dev),
                f"{size}²",
                f"{r['macs'] / 1e3:.1f} k",
                f"{r['plain_s'] * 1e3:.1f}",
                f"{r['fast_s'] * 1e3:.1f}",
                str(r["dtype"]).replace("torch.", ""),
                f"{r['plain_s'] / r['fast_s']:.2f}",
                f"{size * size / 1e6 / r['fast_s']:.2f}",
                f"{r['tflops']:.3g}",
                f"{r['max_diff']:.1e}",
            ]
            for r in res
        ]
        table = markdown_table(
            [
                "model",
                "device",
                "size",
                "MACs/pixel",
                "plain ms",
                "fast ms",
                "fast dtype",
                "speed-up",
                "MPix/s (fast)",
                "TFLOP/s (fast)",
                "max abs diff",
            ],
            rows,
        )
        cmd = f"restorelab bench bfcnn-speed --size {size} --repeats {repeats}"
        if model != "auto":
            cmd += f" --model {model}"
        if not reference:
            cmd += " --no-reference"
        if threads > 0:
            cmd += f" --threads {threads}"
        if device != "auto":
            cmd += f" --device {device}"
        ratio_line = (
            f"\n\nTime of `{label}` ÷ time of the 20-layer, 64-channel BF-CNN, both on the folded fast "
            f"path in the same run: **{ratio:.3f}** (goal ≤ 0.5)."
            if reference
            else ""
        )
        text = (
            f"Plain module forward (unfolded, float32) vs folded fast path, same input, median of "
            f"{repeats} interleaved runs; TFLOP/s = 2 × MACs/pixel × pixels ÷ fast time."
            f"\n\n{table}{ratio_line}\n\n"
            f"`{cmd}` — {machine_line()}\n"
        )
        _write_locked(out, f"bfcnn-speed-{dev.type}", text, f"Learned denoiser speed ({dev.type})")
    return {
        "plain_s": m["plain_s"],
        "fast_s": m["fast_s"],
        "ratio": speedup,
        "max_diff": m["max_diff"],
        "tflops": m["tflops"],
        "ratio_vs_reference": ratio,
        **({"reference_fast_s": res[1]["fast_s"]} if reference else {}),
    }
