"""``restorelab bench denoise``: every denoiser at its defaults against the peers, same run.

For every clean image ``x_i`` of a test set (sorted file names) and every σ, the noisy
input is ``y_i = x_i + σ n_i`` (unclipped Gaussian, ``n_i`` drawn with seed ``seed + i``),
and every method gets the same ``y_i``. Estimates are clipped to [0, 1] (as an 8-bit
save would) before PSNR = 10 log10(1/MSE) and SSIM (Wang et al. 2004, scikit-image
defaults); time is the wall-clock time of the call, averaged per image, after one
untimed warm-up call on a crop.

All methods run in one process, so the state of the C allocator is shared: with glibc's
default (dynamic) thresholds a freed block of a few hundred kB goes back to the OS or
not depending on the largest block any earlier call freed, and a method that allocates
its temporaries afresh pays page faults or not depending on which methods ran before it
(scikit-image TV was markedly slower run alone than inside the full table). The benchmark
therefore first asks glibc (``mallopt``) to keep freed memory in the process (mmap only
above 32 MiB, trim above 512 MiB): every method runs in that steady state, whatever the
order; elsewhere (no glibc) nothing changes.

Peers, with their noise-level rules (σ on the [0, 1] scale):

* ``skimage-tv``: ``skimage.restoration.denoise_tv_chambolle(y, weight=w)`` with
  ``w = 0.75σ·(255σ/25)^0.4`` (Chambolle 2004, the ROF model);
* ``skimage-wavelet``: ``denoise_wavelet(y, sigma=σ, wavelet="db2", method="BayesShrink",
  mode="soft")`` (Chang, Yu & Vetterli 2000), YCbCr for colour; db2 was the best of db1
  (the default), db2, db4, sym4, sym8 on the first 8 BSD68 images at σ = 25;
* ``skimage-nlm``: ``denoise_nl_means(y, h=0.6σ, sigma=σ, fast_mode=True, patch_size=5,
  patch_distance=6)`` (Buades et al. 2005; Darbon et al. 2008);
* ``cv2-nlm``: ``cv2.fastNlMeansDenoising`` (colour: ``...Colored``) on the clipped uint8
  image with ``h = c·255σ``, c = 0.9 up to σ = 30 and 0.8 above (colour: c = 0.6 for both
  h and hColor), 7×7 patches, 21×21 search;
* ``bm3d``: ``bm3d.bm3d(y, sigma_psd=σ)`` (colour: ``bm3d_rgb``), Dabov et al. 2007, when
  the optional ``bm3d`` package imports.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PEERS", "DEFAULT_PEERS", "run_benchmark", "load_set", "tv_weight", "cv2_h", "SK_NLM_H"]



def tv_weight(s: float) -> float:
    """skimage TV weight for noise σ ([0, 1] scale): 0.75σ·(255σ/25)^0.4.

    Picked on the first 6 BSD68 images (PSNR at σ = 15/25/50 over a grid of w/σ: best
    near 0.6, 0.75-0.8 and 0.9-1.0), i.e. the peer is tuned, not handicapped.
    """
    return 0.75 * s * (255 * s / 25) ** 0.4


def cv2_h(s: float, colour: bool = False) -> float:
    """OpenCV NLM filter strength on the 0..255 scale: gray 0.9·255σ up to σ = 30 and 0.8·255σ
    above; colour (``fastNlMeansDenoisingColored``, h = hColor) 0.6·255σ. Same kind of grid
    search as :func:`tv_weight` (gray: 6 BSD68 images; colour: 6 CBSD68 crops, σ = 25, 50)."""
    if colour:
        return 0.6 * 255 * s
    return (0.9 if 255 * s <= 30 else 0.8) * 255 * s


#: skimage NL-means h = SK_NLM_H·σ (0.6 beat 0.4, 0.5, 0.8 and 1.0 at σ = 15, 25 and 50)
SK_NLM_H = 0.6
DEFAULT_PEERS = ("skimage-tv", "skimage-wavelet", "skimage-nlm", "cv2-nlm", "bm3d")


def steady_allocator() -> bool:
    """Ask glibc to keep freed memory in the process (see the module doc); True if it did.

    ``mallopt(M_MMAP_THRESHOLD, 32 MiB)`` (glibc's largest value) and
    ``mallopt(M_TRIM_THRESHOLD, 512 MiB)``. Process-wide and not undone: freed blocks
    are reused instead of being returned to the OS and faulted in again.
    """
    import ctypes

    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(m_mmap_threshold, 32 << 20) == 1
    return bool(mallopt(m_trim_threshold, 512 << 20) == 1 and ok)


def _ca(y: np.ndarray) -> dict[str, Any]:
    return {"channel_axis": -1} if y.ndim == 3 else {}


def _skimage_tv(y: np.ndarray, s: float) -> np.ndarray:
    from skimage.restoration import denoise_tv_chambolle

    return denoise_tv_chambolle(y, weight=tv_weight(s), **_ca(y))


def _skimage_wavelet(y: np.ndarray, s: float) -> np.ndarray:
    from skimage.restoration import denoise_wavelet

    return denoise_wavelet(y, sigma=s, wavelet="db2", method="BayesShrink", mode="soft",
                           rescale_sigma=True, convert2ycbcr=y.ndim == 3, **_ca(y))


def _skimage_nlm(y: np.ndarray, s: float) -> np.ndarray:
    from skimage.restoration import denoise_nl_means

    return denoise_nl_means(y, h=SK_NLM_H * s, sigma=s, fast_mode=True, patch_size=5, patch_distance=6,
                            **_ca(y))


def _cv2_nlm(y: np.ndarray, s: float) -> np.ndarray:
    import cv2

    u8 = np.clip(np.rint(y * 255), 0, 255).astype(np.uint8)
    h = float(cv2_h(s, colour=y.ndim == 3))
    if y.ndim == 3:
        out = cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(u8[:, :, ::-1]), None, h, h, 7, 21)
        out = out[:, :, ::-1]
    else:
        out = cv2.fastNlMeansDenoising(u8, None, h, 7, 21)
    return out.astype(np.float32) / 255


def _bm3d(y: np.ndarray, s: float) -> np.ndarray:
    import bm3d

    if y.ndim == 3:
        return bm3d.bm3d_rgb(y, s)
    return bm3d.bm3d(y, sigma_psd=s)


#: peer name → (function(y, σ) → x̂, module that must import)
PEERS: dict[str, tuple[Callable[[np.ndarray, float], np.ndarray], str]] = {
    "skimage-tv": (_skimage_tv, "skimage"),
    "skimage-wavelet": (_skimage_wavelet, "skimage"),
    "skimage-nlm": (_skimage_nlm, "skimage"),
    "cv2-nlm": (_cv2_nlm, "cv2"),
    "bm3d": (_bm3d, "bm3d"),
}


@dataclass
class _Stats:
    name: str
    kind: str
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    secs: list[float] = field(default_factory=list)
    error: str = ""


def load_set(set_dir: str | os.PathLike, limit: int | None = None) -> tuple[list[str], list[np.ndarray]]:
    """The images of a folder (sorted names, supported extensions), first ``limit`` only."""
    from restorelab.io import is_image_path, load_image

    d = Path(set_dir)
    if not d.is_dir():
        raise ValueError(f"{set_dir}: not a folder of test images")
    files = sorted(f for f in d.iterdir() if f.is_file() and is_image_path(f) and not f.name.startswith("."))
    if limit is not None:
        files = files[:limit]
    if not files:
        raise ValueError(f"{set_dir}: the folder holds no image")
    return [f.name for f in files], [load_image(f) for f in files]


def _select_methods(methods: Sequence[str] | None) -> list[str]:
    from restorelab import denoise

    if methods:
        for m in methods:
            denoise.get_class(m)  # KeyError with the known names
        return list(methods)
    return [c.name for c in denoise.available() if c.family == "classical" and c.name != "bfcnn"]


def _select_peers(peers: Sequence[str] | None) -> tuple[list[str], list[str]]:
    import importlib

    explicit = peers is not None
    names = list(DEFAULT_PEERS if peers is None else peers)
    unknown = [p for p in names if p not in PEERS]
    if unknown:
        raise ValueError(f"unknown peer(s) {', '.join(unknown)}; known: {', '.join(PEERS)}")
    ok, missing = [], []
    for p in names:
        try:
            importlib.import_module(PEERS[p][1])
            ok.append(p)
        except ImportError:
            missing.append(p)
            if explicit:
                print(f"restorelab: warning: peer {p} skipped ({PEERS[p][1]} is not installed)",
                      file=sys.stderr)
    return ok, missing


def run_benchmark(
    set_dir: str | os.PathLike,
    sigmas: Sequence[float],
    *,
    methods: Sequence[str] | None = None,
    peers: Sequence[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
    device: str = "auto",
    out: str | os.PathLike | None = "BENCHMARKS.md",
    command: str = "",
) -> str:
    """Run the benchmark, print the markdown tables and write them to ``out`` (if given).

    ``sigmas`` are on the 0..255 scale. Returns the markdown text.
    """
    from tqdm import tqdm

    from restorelab import denoise
    from restorelab.bench.report import machine_line, write_section
    from restorelab.metrics import psnr, ssim
    from restorelab.noise import add_gaussian_noise

    names, images = load_set(set_dir, limit)
    steady = steady_allocator()
    meth = _select_methods(methods)
    peer_names, missing = _select_peers(peers)
    runners: list[tuple[str, str, Callable[[np.ndarray, float], Any]]] = []
    for m in meth:
        d = denoise.get(m, device=device)
        runners.append((m, "restorelab", d))
    for p in peer_names:
        runners.append((p, "peer", PEERS[p][0]))
    colour = images[0].ndim == 3
    set_name = Path(set_dir).resolve().name
    sections = []
    bar = tqdm(total=len(sigmas) * len(images) * len(runners), desc="bench", unit="run", file=sys.stderr,
               dynamic_ncols=True)
    try:
        for s255 in sigmas:
            s = float(s255) / 255.0
            stats = {name: _Stats(name, kind) for name, kind, _ in runners}
            noisy = _Stats("noisy input", "input")
            ys = [add_gaussian_noise(x, s, seed=seed + i) for i, x in enumerate(images)]
            for name, _kind, fn in runners:  # warm-up (JIT, FFT plans, thread pools): not timed
                bar.set_postfix_str(f"σ={s255:g} {name} warm-up", refresh=True)
                try:
                    fn(np.ascontiguousarray(ys[0][:64, :64]), s)
                except Exception as e:
                    stats[name].error = f"{type(e).__name__}: {e}"
            for x, y in zip(images, ys, strict=True):
                noisy.psnr.append(psnr(x, np.clip(y, 0, 1)))
                noisy.ssim.append(ssim(x, np.clip(y, 0, 1)))
                for name, _kind, fn in runners:
                    st = stats[name]
                    bar.set_postfix_str(f"σ={s255:g} {name}", refresh=False)
                    if not st.error:
                        try:
                            t0 = time.perf_counter()
                            xh = fn(y, s)
                            st.secs.append(time.perf_counter() - t0)
                            xh = np.clip(np.asarray(xh, dtype=np.float64), 0, 1)
                            st.psnr.append(psnr(x, xh))
                            st.ssim.append(ssim(x, xh))
                        except Exception as e:
                            st.error = f"{type(e).__name__}: {e}"
                    bar.update(1)
            sections.append((s255, noisy, list(stats.values())))
    finally:
        bar.close()

    md = _render(sections, set_name, names, colour, seed, command, missing, machine_line(), peer_names,
                 steady)
    print(md)
    if out is not None:
        write_section(out, f"denoise-{set_name}", md, f"Denoising: {set_name}")
        print(f"\nwrote section 'denoise-{set_name}' of {out}", file=sys.stderr)
    return md


_PEER_TEXT = {
    "skimage-tv": "scikit-image `denoise_tv_chambolle` (weight 0.75σ·(255σ/25)^0.4)",
    "skimage-wavelet": "scikit-image `denoise_wavelet` (db2, BayesShrink, soft, σ given)",
    "skimage-nlm": f"scikit-image `denoise_nl_means` (fast mode, h {SK_NLM_H}σ, σ given, 5×5 patches, "
    "distance 6)",
    "cv2-nlm": "OpenCV `fastNlMeansDenoising` on uint8 (h 0.9·255σ, 0.8·255σ above σ = 30; colour: "
    "`...Colored`, h = hColor = 0.6·255σ; 7×7 patches, 21×21 search)",
    "bm3d": "`bm3d.bm3d` (σ given; `bm3d_rgb` for colour)",
}


def _render(sections: list, set_name: str, names: list[str], colour: bool, seed: int, command: str,
            missing: list[str], machine: str, peers: list[str], steady: bool = False) -> str:
    from restorelab.bench.report import markdown_table

    lines = [
        f"Command: `{command}`" if command else "",
        "",
        f"Machine: {machine}",
        "",
        f"{len(names)} {'colour' if colour else 'gray'} images of `{set_name}` ({names[0]} … {names[-1]}); "
        f"noise y = x + σn, unclipped, image i seeded with {seed} + i; estimates clipped to [0, 1] "
        "before PSNR/SSIM; seconds = mean wall time per image after one untimed warm-up call"
        + (", freed memory kept in the process (glibc mallopt) so that no method's time depends on the "
           "methods run before it. " if steady else ". ") +
        "restorelab methods run at their defaults"
        + ("; peers: " + "; ".join(f"{p} = {_PEER_TEXT[p]}" for p in peers) if peers else "") + ".",
    ]
    if missing:
        lines += ["", f"Not installed, so not run: {', '.join(missing)}."]
    for s255, noisy, stats in sections:
        ref = next((st for st in stats if st.name == "skimage-tv" and st.secs and not st.error), None)
        ref_t = float(np.mean(ref.secs)) if ref else None
        rows: list[list[object]] = [[noisy.name, noisy.kind, f"{np.mean(noisy.psnr):.2f}",
                                     f"{np.mean(noisy.ssim):.4f}", "—", "—"]]
        for st in stats:
            if st.error:
                rows.append([st.name, st.kind, "failed", st.error[:80].replace("|", "/"), "—", "—"])
                continue
            t = float(np.mean(st.secs))
            ratio = f"{t / ref_t:.2f}" if ref_t else "—"
            rows.append([st.name, st.kind, f"{np.mean(st.psnr):.2f}", f"{np.mean(st.ssim):.4f}",
                         f"{t:.3f}", ratio])
        lines += ["", f"### σ = {s255:g}", "",
                  markdown_table(["method", "source", "PSNR (dB)", "SSIM", "s / image",
                                  "time ÷ skimage-tv"], rows)]
    return "\n".join(lines).lstrip("\n") + "\n"
