"""Painted-mask inpainting with the prior implicit in a denoiser, for photos of any size.

The mask decides where the work is done:

1. **Regions.** The mask's connected components (8-connected; components closer than the
   context margin are grouped, since each would see the other in its context) are each
   solved in their bounding box plus a context ``margin`` on every side. A component whose
   box with margins exceeds ``window`` pixels (a scratch across a photo) is tiled along the
   mask: cores of ``window − 2·margin`` pixels that hold mask pixels, each with its margins.
   Nothing is ever cropped to a fixed size, every mask pixel belongs to exactly one core.
2. **Batches.** Windows are rounded up to a multiple of 16 pixels (grown inside the image,
   which only adds context) and windows of equal size are solved together as one batch.
3. **Warm start.** The whole mask is first filled by a classical method
   (:mod:`restorelab.prior.fills`); regions solved later see earlier results as context.
4. **Refinement.** In each window, Algorithm 2 of Kadkhodaie & Simoncelli (2021)
   (:func:`restorelab.prior.sampler._ascent`, the same iteration as
   :func:`~restorelab.prior.sampler.inverse_job`) with ``M`` the known pixels of that window.

Two modes:

* ``fast`` (default): Algorithm 2 started from the classical fill plus noise of σ₀, a short
  deterministic schedule (β = 1), with the network's answer at the fill subtracted (the
  anchor of :meth:`_Neutral.anchor_at`) so that iterating it cannot drift. Chosen by
  measurement (``restorelab bench inpaint``, ``docs/inpainting.md``): with the shipped
  colour network, start noise lowers PSNR and leaves residual coloured noise, so the default
  σ₀ is tiny and the fast mode keeps the (biharmonic) fill where the network agrees with it.
* ``sample``: full Algorithm 2 from noise, K samples per region; the result is their mean
  and the per-pixel standard deviation is an uncertainty map.

``fill`` runs the classical fill alone.

Colour: every pixel of the result is either the input's (known pixels, copied exactly) or a
fill clipped to [0, 1]; a value outside [0, 1] left in one channel only would be shown, and
saved, as a saturated hue. The noise level σ_t of the iteration is measured over the hole
(:meth:`_Known.noise_level`), so that the stopping rule does not end while the hole still
holds visible noise, and the denoiser sees each window shifted to a neutral mean
(:class:`_Neutral`), so that its small errors do not accumulate into a colour cast.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from restorelab.jobs import Progress, run_job
from restorelab.params import Param, resolve_params
from restorelab.prior.fills import FILL_PARAMS, FILLS, fill

__all__ = [
    "INPAINT_MODES",
    "INPAINT_PARAMS",
    "FAST_SCHEDULE",
    "SAMPLE_SCHEDULE",
    "Region",
    "InpaintResult",
    "plan_regions",
    "inpaint_job",
    "inpaint",
]

INPAINT_MODES = ("fast", "sample", "fill")

#: Algorithm 2 settings of the fast mode (σ on the [0, 1] scale), chosen with
#: ``restorelab bench inpaint --fast S0:K:T`` (docs/inpainting.md): 1, 2, 4 and 10 iterations
#: score the same with the shipped colour network (the "inpaint-iters" section of BENCHMARKS.md)
FAST_SCHEDULE: dict[str, float] = {
    "sigma0": 0.001, "h0": 0.2, "beta": 1.0, "sigma_L": 0.002, "max_iter": 1, "average": 1,
}

#: Algorithm 2 settings of the sample mode: from noise (σ₀ = 1) as the paper, with a step
#: h₀ = 0.05 and β = 0.05 instead of its 0.01 and 0.01, which reach σ_L in about a fifth of the
#: iterations (docs/inpainting.md)
SAMPLE_SCHEDULE: dict[str, float] = {
    "sigma0": 1.0, "h0": 0.05, "beta": 0.05, "sigma_L": 0.01, "patience": 200,
}

INPAINT_PARAMS: tuple[Param, ...] = (
    Param("mode", str, "fast", choices=INPAINT_MODES, label="Mode",
          help="fast: classical fill refined by a short Algorithm 2; sample: full Algorithm 2, K samples "
          "(mean and uncertainty); fill: the classical fill alone"),
    Param("fill", str, "blend", choices=tuple(FILLS), label="Classical fill",
          help="the classical fill: the start of the fast mode and the result of the fill mode"),
    Param("margin", int, 24, lo=4, hi=256, unit="px", label="Context margin",
          help="known pixels kept around each hole on every side"),
    Param("window", int, 192, lo=32, hi=2048, unit="px", label="Largest window",
          help="larger regions (long scratches) are tiled along the mask into windows of this side"),
    Param("batch", int, 8, lo=1, hi=256, label="Windows per batch",
          help="windows of equal size solved together"),
    Param("samples", int, 4, lo=1, hi=64, label="Samples K",
          help="sample mode: samples per region (their mean is the result, their std the uncertainty)"),
    Param("iters", int, int(FAST_SCHEDULE["max_iter"]), lo=1, hi=10000, label="Iterations",
          help="fast mode: Algorithm 2 iterations after the classical start"),
    Param("average", int, int(FAST_SCHEDULE["average"]), lo=1, hi=64, label="Refinements averaged",
          help="fast mode: independent refinements run together and averaged (an estimate of the mean)"),
    Param("sigma0", float, FAST_SCHEDULE["sigma0"], lo=1e-3, hi=1.0, log=True, sigma_like=True,
          label="Start noise σ₀", help="fast mode: noise added to the classical fill before the refinement"),
    Param("max_iter", int, 1500, lo=1, hi=100000, label="Maximum iterations (sample)",
          help="sample mode: iteration cap of Algorithm 2"),
    Param("seed", int, 0, lo=0, hi=2**31 - 1, label="Random seed", help="noise of Algorithm 2"),
) + FILL_PARAMS


@dataclass
class Region:
    """One window solved by Algorithm 2: ``box`` (y0, x0, y1, x1) in the image and ``hole``,
    the (y1 − y0, x1 − x0) boolean map of the mask pixels this window fills (its core)."""

    box: tuple[int, int, int, int]
    hole: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (self.box[2] - self.box[0], self.box[3] - self.box[1])


@dataclass
class InpaintResult:
    """``image`` the filled image (H, W[, C]) float32 (known pixels exactly the input's);
    ``std`` the per-pixel standard deviation over the K samples (sample mode, else None);
    ``regions`` the windows solved; ``iterations`` Algorithm 2 steps summed over batches."""

    image: np.ndarray
    std: np.ndarray | None
    regions: list[Region]
    mode: str
    fill: str
    iterations: int
    seconds: float
    samples: list[np.ndarray] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    log: list[tuple[int, float, float]] = field(default_factory=list)


def _round_up(v: int, m: int) -> int:
    return int(math.ceil(v / m) * m)


def _window(y0: int, x0: int, y1: int, x1: int, margin: int, H: int, W: int, m: int = 16
            ) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1) grown by ``margin``, sides rounded up to ``m``, shifted inside the image."""
    h = min(H, _round_up(y1 - y0 + 2 * margin, m))
    w = min(W, _round_up(x1 - x0 + 2 * margin, m))
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    a = min(max(0, cy - h // 2), H - h)
    b = min(max(0, cx - w // 2), W - w)
    return a, b, a + h, b + w


def plan_regions(mask: np.ndarray, margin: int = 24, window: int = 192) -> list[Region]:
    """The windows that cover ``mask`` (True = to fill), see the module docstring.

    Every True pixel of ``mask`` is in the ``hole`` of exactly one region, and each hole pixel
    has at least ``min(margin, distance to the image border)`` pixels of context on every side
    inside its window.
    """
    from scipy import ndimage

    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {m.shape}")
    H, W = m.shape
    margin = int(margin)
    core_side = max(8, int(window) - 2 * margin)
    near = ndimage.binary_dilation(m, iterations=max(1, margin // 2)) if margin > 1 else m
    lab, n = ndimage.label(near, structure=np.ones((3, 3), bool))
    regions: list[Region] = []
    for k, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None:
            continue
        comp = (lab[sl] == k) & m[sl]
        if not comp.any():
            continue
        rows, cols = np.flatnonzero(comp.any(axis=1)), np.flatnonzero(comp.any(axis=0))
        y0, y1 = sl[0].start + int(rows[0]), sl[0].start + int(rows[-1]) + 1
        x0, x1 = sl[1].start + int(cols[0]), sl[1].start + int(cols[-1]) + 1
        if y1 - y0 <= core_side and x1 - x0 <= core_side:
            cores = [(y0, x0, y1, x1)]
        else:  # tiled along the mask: only the cores that hold mask pixels
            cores = [
                (a, b, min(a + core_side, y1), min(b + core_side, x1))
                for a in range(y0, y1, core_side)
                for b in range(x0, x1, core_side)
            ]
        for a, b, c, d in cores:
            part = (lab[a:c, b:d] == k) & m[a:c, b:d]
            if not part.any():
                continue
            rr, cc = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
            ta, tc = a + int(rr[0]), a + int(rr[-1]) + 1
            tb, td = b + int(cc[0]), b + int(cc[-1]) + 1
            box = _window(ta, tb, tc, td, margin, H, W)
            hole = np.zeros((box[2] - box[0], box[3] - box[1]), bool)
            tight = part[ta - a : tc - a, tb - b : td - b]
            hole[ta - box[0] : tc - box[0], tb - box[1] : td - box[1]] = tight
            regions.append(Region(box, hole))
    return regions


class _Known:
    """``M Mᵀ`` for a batch of pixel masks: ``proj(x) = x · known`` per window (Algorithm 2
    needs nothing else of the operator)."""

    def __init__(self, known: torch.Tensor) -> None:
        self.known = known  # (B, 1, h, w) float, 1 = measured

    def proj(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.known

    def proj_rows(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return x * self.known[idx]

    def noise_level(self, d: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """σ_t = ‖d‖/√n over the hole pixels only. The known pixels are pulled to their values
        by h_t·(x_c − y) at every step, much faster than the denoiser removes the noise in the
        hole; measured over the whole window, σ_t would fall below σ_L (and the iteration
        stop) while the hole still holds visible, per-channel independent — coloured — noise."""
        hole = 1.0 - self.known[idx]
        n = (hole.flatten(1).sum(dim=1) * d.shape[1]).clamp_min(1.0)
        return (d * hole).flatten(1).norm(dim=1) / n.sqrt()


#: context the denoiser gets beyond a window's edge, by reflection (px): the networks pad their
#: convolutions with zeros, which a colour network answers with a coloured frame up to 16/255
#: strong near the edge (3/255 at 16 px, 1.7/255 at 32 px on a flat colour)
EDGE_PAD = 16


class _Neutral:
    """The denoiser applied to each window as ``D(y − c + ½) + c − ½``, ``c`` the window's
    mean per channel, on the window padded by reflection (:data:`EDGE_PAD`).

    Why: a learned colour denoiser is not exact on flat colours; its error has the hue of
    the colour (the shipped network moves a flat (0.85, 0.25, 0.55) by (+1.0, −1.7, −0.4)/255
    at σ = 0), and Algorithm 2 applies it hundreds of times inside a hole, whose fixed point
    then drifts to a magenta/purple cast. Shifting each channel's mean to neutral grey makes
    the input look like what the network handles best and leaves a grey, not a coloured,
    error; the network's denoising PSNR is unchanged by the shift (within a few hundredths
    of a dB at σ = 5…50/255 on a CBSD68 crop), whereas shifting to a zero mean would cost
    dB (negative inputs lie outside its training data). The network's remaining response
    to flat grey, about 0.2/255 per application but compounding over the iterations (2/255
    after ten), is measured once and subtracted, so that a flat colour is a fixed point:
    D(c·1) = c·1. In the fast mode the anchor (:meth:`anchor_at`) replaces it.
    """

    def __init__(self, den: Any) -> None:
        self.den = den
        self._flat: torch.Tensor | None = None
        self.anchor: torch.Tensor | None = None

    def anchor_at(self, start: torch.Tensor) -> None:
        """Make ``start`` (the classical fill of a batch of windows) a fixed point: from now on
        the error D(s) − s of the network at the start is subtracted from its answers.

        Algorithm 2 needs f(y) = D(y) − y → 0 on clean images; a network that slightly
        changes clean images (the shipped colour model moves a clean colour ramp by up to
        4/255 per application) makes the iteration drift — by 8/255 after 10 iterations and
        21/255 after 20 on a ramp, with a hue because the error differs per channel. With the
        anchor the refinement moves the fill only where the noise-conditioned estimate
        differs from the network's answer at the fill itself.
        """
        self.anchor = None
        self.anchor = self.denoise_tensor(start, 0.0) - start

    def _flat_error(self, like: torch.Tensor) -> torch.Tensor:
        """D(½·1) − ½ per channel, (1, C, 1, 1), measured on a flat grey square."""
        if self._flat is None or self._flat.shape[1] != like.shape[1] or self._flat.device != like.device:
            n = 2 * EDGE_PAD + 32
            g = torch.full((1, like.shape[1], n, n), 0.5, dtype=like.dtype, device=like.device)
            r = self.den.denoise_tensor(g, 0.0)[..., EDGE_PAD:-EDGE_PAD, EDGE_PAD:-EDGE_PAD]
            self._flat = (r - 0.5).mean(dim=(2, 3), keepdim=True)
        return self._flat

    def denoise_tensor(self, y: torch.Tensor, sigma: Any) -> torch.Tensor:
        c = y.mean(dim=(2, 3), keepdim=True) - 0.5
        z = y - c
        h, w = z.shape[-2:]
        pad = min(EDGE_PAD, h - 1, w - 1)
        if pad > 0:
            z = torch.nn.functional.pad(z, (pad, pad, pad, pad), mode="reflect")
        out = self.den.denoise_tensor(z, sigma)
        if pad > 0:
            out = out[..., pad : pad + h, pad : pad + w]
        if self.anchor is not None and self.anchor.shape == out.shape:
            return out + c - self.anchor
        return out - self._flat_error(y) + c


def _schedule(mode: str, p: dict[str, Any]) -> dict[str, Any]:
    if mode == "fast":
        return {
            "sigma0": float(p["sigma0"]), "sigma_L": FAST_SCHEDULE["sigma_L"], "h0": FAST_SCHEDULE["h0"],
            "beta": FAST_SCHEDULE["beta"], "max_iter": int(p["iters"]), "patience": int(p["iters"]),
        }
    return {**SAMPLE_SCHEDULE, "max_iter": int(p["max_iter"])}


def inpaint_job(
    image: Any,
    mask: Any,
    denoiser: Any = "bfcnn",
    *,
    device: Any = "auto",
    schedule: dict[str, Any] | None = None,
    **params: Any,
) -> Generator[Progress, None, InpaintResult]:
    """Fill the pixels of ``image`` (H, W[, C], [0, 1]) where ``mask`` (H, W) is True.

    A job (:mod:`restorelab.jobs`): one :class:`Progress` per Algorithm 2 iteration of each
    batch of windows, with ``total`` (fast mode: exact; sample mode: the iteration cap) and
    ``data["regions"]``; cancellable between iterations. ``params`` follow
    :data:`INPAINT_PARAMS`; ``schedule`` overrides Algorithm 2 settings of the mode
    (``sigma0``, ``sigma_L``, ``h0``, ``beta``, ``max_iter``, ``patience``; values of
    :data:`~restorelab.prior.sampler.INVERSE_PARAMS`, checked there). Known pixels are
    returned exactly; ``log`` of the result holds (t, σ_t, h_t) of every iteration.
    """
    from restorelab.device import resolve_device, threads_for_work
    from restorelab.image import as_float_image
    from restorelab.prior._util import as_denoiser, call_denoiser
    from restorelab.prior.sampler import _ascent

    t_start = time.perf_counter()
    p = resolve_params(INPAINT_PARAMS, params)
    mode = p["mode"]
    x = as_float_image(image)
    if x.ndim == 3 and x.shape[2] == 4:
        x = x[:, :, :3]
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m.any(axis=2)
    m = m.astype(bool)
    if m.shape != x.shape[:2]:
        raise ValueError(f"mask {m.shape} and image {x.shape[:2]} differ in size")
    if not m.any():
        raise ValueError("the inpainting mask is empty: mark the pixels to fill")
    fill_kw = {k.name: p[k.name] for k in FILL_PARAMS}
    yield Progress(0, None, message=f"{p['fill']} fill")
    work = fill(p["fill"], x, m, **fill_kw)
    work[m] = np.clip(work[m], 0.0, 1.0)
    regions = plan_regions(m, p["margin"], p["window"])
    info = {"regions": [list(r.box) for r in regions]}
    if mode == "fill":
        yield Progress(1, 1, message=f"{p['fill']} fill", data=info)
        return InpaintResult(work, None, regions, mode, p["fill"], 0, time.perf_counter() - t_start,
                             params=dict(p), message=f"{p['fill']} fill of {int(m.sum())} pixels")
    dev = resolve_device(device)
    den = _Neutral(as_denoiser(denoiser, device))
    sched = _schedule(mode, p)
    if schedule:
        from restorelab.prior.sampler import INVERSE_PARAMS

        keys = ("sigma0", "sigma_L", "h0", "beta", "max_iter", "patience")
        bad = set(schedule) - set(keys)
        if bad:
            raise ValueError(f"unknown schedule setting(s) {sorted(bad)}; expected {', '.join(keys)}")
        checked = resolve_params(INVERSE_PARAMS, dict(schedule))
        sched.update({k: checked[k] for k in schedule})
    K = int(p["samples"]) if mode == "sample" else int(p["average"])
    groups: dict[tuple[int, int], list[int]] = {}
    for i, r in enumerate(regions):
        groups.setdefault(r.shape, []).append(i)
    per = max(1, int(p["batch"]) // K)
    batches = [idx[j : j + per] for idx in groups.values() for j in range(0, len(idx), per)]
    total = len(batches) * sched["max_iter"]
    chan = x.ndim == 3
    xs = x if chan else x[:, :, None]
    ws = work if chan else work[:, :, None]
    C = xs.shape[2]
    std_img = np.zeros(m.shape, np.float32) if mode == "sample" else None
    sample_imgs = [ws.copy() for _ in range(K)] if mode == "sample" else []
    gen = torch.Generator(device=dev)
    gen.manual_seed(int(p["seed"]))
    done_steps = 0
    iters = 0
    log: list[tuple[int, float, float]] = []
    with threads_for_work() if dev.type == "cpu" else _null():
        for bi, idx in enumerate(batches):
            h, w = regions[idx[0]].shape
            crops, holes = [], []
            for i in idx:
                a, b, c, d = regions[i].box
                crops.append(np.moveaxis(ws[a:c, b:d], 2, 0))
                holes.append(regions[i].hole[None])
            xc = torch.from_numpy(np.stack(crops)).to(dev).repeat_interleave(K, 0)
            hole = torch.from_numpy(np.stack(holes).astype(np.float32)).to(dev).repeat_interleave(K, 0)
            known = 1.0 - hole
            op = _Known(known)
            Mxc = xc * known
            B = xc.shape[0]
            shape = (B, C, h, w)
            if mode == "fast":
                den.anchor_at(xc)
                y0 = xc + sched["sigma0"] * torch.randn(shape, generator=gen, device=dev)
            else:
                den.anchor = None
                y0 = None
            core = _ascent(den, op, Mxc, shape, gen, dev, sched, y0=y0)
            try:
                while True:
                    try:
                        st = next(core)
                    except StopIteration as stop:
                        y, sig_in, t_run, _conv, _msg = stop.value
                        break
                    done_steps += 1
                    smax = float(st.sigma[st.ran].max()) if bool(st.ran.any()) else float("nan")
                    log.append((done_steps, smax, st.h))
                    frac = (bi + min(1.0, st.t / sched["max_iter"])) / len(batches)
                    yield Progress(
                        done_steps, total, sigma=smax, h=st.h,
                        message=f"{mode}: batch {bi + 1}/{len(batches)} ({len(idx)} window(s) {w}x{h}), "
                        f"t = {st.t}",
                        data={**info, "fraction": frac, "batch": bi},
                    )
            finally:
                core.close()
            iters += t_run
            done_steps = (bi + 1) * sched["max_iter"]
            out = call_denoiser(den, y, sig_in)
            out = (out * hole + xc * known).clamp(0.0, 1.0)
            res = out.detach().to("cpu", torch.float32).numpy().reshape(len(idx), K, C, h, w)
            for j, i in enumerate(idx):
                a, b, c, d = regions[i].box
                hm = regions[i].hole
                mean = np.moveaxis(res[j].mean(axis=0), 0, 2)
                ws[a:c, b:d][hm] = mean[hm]
                if mode == "sample":
                    sd = res[j].std(axis=0, ddof=1).mean(axis=0) if K > 1 else np.zeros((h, w), np.float32)
                    std_img[a:c, b:d][hm] = sd[hm]
                    for k in range(K):
                        sample_imgs[k][a:c, b:d][hm] = np.moveaxis(res[j, k], 0, 2)[hm]
    out_img = ws if chan else ws[:, :, 0]
    out_img[~m] = x[~m]  # the known pixels, exactly
    samples = [s if chan else s[:, :, 0] for s in sample_imgs]
    secs = time.perf_counter() - t_start
    yield Progress(total, total, message=f"{mode}: done", data={**info, "fraction": 1.0, "done": True})
    return InpaintResult(
        out_img.astype(np.float32), std_img, regions, mode, p["fill"], iters, secs, samples,
        {**p, **sched}, log=log,
        message=f"{mode} inpainting of {int(m.sum())} pixels in {len(regions)} window(s), "
        f"{len(batches)} batch(es), {iters} iterations, {secs:.1f} s",
    )


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: Any) -> None:
        return None


def inpaint(image: Any, mask: Any, denoiser: Any = "bfcnn", **kw: Any) -> InpaintResult:
    """Run :func:`inpaint_job` to the end."""
    return run_job(inpaint_job(image, mask, denoiser, **kw))
