"""Non-local means (Buades, Coll & Morel, "A non-local algorithm for image denoising", CVPR 2005).

Each pixel is replaced by a weighted mean of the pixels in its search window, weighted by
the similarity of the patches around them:

    x̂(i) = Σ_j w(i, j) y(j) / Σ_j w(i, j),
    w(i, j) = exp(−max(d²(i, j) − 2σ², 0) / h²),

with d²(i, j) the mean squared difference of the (2f+1)² patches centred at i and j
(averaged over colour channels with ``color="joint"``; by default colour images are instead
denoised channel by channel in an orthonormal luminance/chrominance space, with a larger h
on the chrominance channels, which gained about 1.2 dB on CBSD68 images). The ``− 2σ²``
offset (the expected distance of two noisy copies of the same patch) and the centre weight
option ``w(i, i) = max_{j≠i} w(i, j)`` follow Buades, Coll & Morel, "Non-Local Means
Denoising", Image Processing On Line 1 (2011); the other option is ``w(i, i) = 1`` (a zero
distance, as in the 2005 paper). The σ-dependent patch/search/h/centre defaults were tuned
on BSD68 (starting from the IPOL table: with aggregation, smaller search windows and a
larger h do better). With ``aggregate=True`` every patch
estimate is spread back over all its pixels (the IPOL "patch-wise" variant, here without
per-patch normalisation): ``x̂(z) = Σ_o W_o(z) y(z+o) / Σ_o W_o(z)`` where ``W_o`` is the
box filter of ``w(·, ·+o)``.

The torch backend is vectorised over pixels and over chunks of search offsets: for each
offset ``o`` the patch distances of all pixels are one box filter of the squared
difference image, and the symmetry ``w(i, i+o) = w(i+o, i)`` halves the work. It runs on
CUDA when asked. The OpenCV backend calls ``cv2.fastNlMeansDenoising`` on 8-bit input
(each channel is mapped to uint8 and quantised; OpenCV weighs by ``exp(−d²/h²)``, without
the 2σ² offset), or on uint16 with ``normType=NORM_L1`` when ``opencv_depth=16``; colour
goes channel by channel through an orthonormal opponent colour space.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

import numpy as np

from restorelab.denoise import register
from restorelab.denoise.base import Denoiser
from restorelab.denoise.wavelet import OPPONENT, from_opponent, to_opponent
from restorelab.jobs import Progress
from restorelab.params import Param

__all__ = ["NLMDenoiser", "nlm_torch", "nlm_opencv", "nlm_torch_job"]


def _odd(v: int) -> int:
    return int(v) | 1


def _default_patch(s: float) -> int:
    """Patch side growing with σ (cf. the IPOL table): 5 up to σ = 30/255, 7 up to 45, 9 above."""
    s255 = s * 255
    return 5 if s255 <= 30 else 7 if s255 <= 45 else 9


def _default_search(s: float) -> int:
    """7×7 search window up to σ = 30/255, 11×11 above: with patch aggregation, small windows
    gave the best PSNR on BSD68 (21×21 or 35×35 windows lose up to 0.5 dB)."""
    return 7 if s * 255 <= 30 else 11


def _default_h(s: float) -> float:
    """h = 0.8σ (σ ≤ 17/255), 0.75σ (≤ 30) with centre weight 1; 0.4σ above with the IPOL
    centre weight (tuned on BSD68 images 1–16, checked on images 17–36, at σ = 15, 25, 50)."""
    s255 = s * 255
    return (0.8 if s255 <= 17 else 0.75 if s255 <= 30 else 0.4) * s


def _default_center(s: float) -> str:
    """Centre weight: 1 up to σ = 30/255, the IPOL max-of-others rule above."""
    return "one" if s * 255 <= 30 else "max"


def _default_h_opencv(s: float) -> float:
    """OpenCV's h (no −2σ² offset): 0.8σ was best of 0.8/1.0/1.2σ on BSD68 at σ = 25."""
    return 0.8 * s


def _box_sum(t: Any, k: int) -> Any:
    """Sum over k×k windows (valid part) of (N, 1, H, W), separable, by k − 1 shifted adds per axis."""
    n = t.shape[-2] - k + 1
    a = t[..., 0:n, :].clone()
    for i in range(1, k):
        a += t[..., i : i + n, :]
    m = t.shape[-1] - k + 1
    b = a[..., 0:m].clone()
    for i in range(1, k):
        b += a[..., i : i + m]
    return b


def nlm_torch_job(
    y: Any,
    sigma: float,
    h: float,
    patch: int = 5,
    search: int = 7,
    aggregate: bool = True,
    chunk: int = 16,
    center: str = "max",
    kappa: float = 2.0,
) -> Generator[Progress, None, Any]:
    """Non-local means of a torch image ``y`` (C, H, W) as a job yielding progress per offset chunk.

    Weights ``exp(−max(d² − κσ², 0)/h²)`` (κ = 2) with d² the mean squared patch difference
    (Buades, Coll & Morel, IPOL 2011). Centre weight: ``"max"`` of the others (IPOL) or
    ``"one"``, the weight exp(0) of a zero distance (Buades et al. 2005). Returns (C, H, W).
    """
    if center not in ("max", "one"):
        raise ValueError(f"center must be 'max' or 'one', got {center!r}")
    import torch
    import torch.nn.functional as F

    from restorelab.denoise._torchutil import threads_for

    if y.ndim != 3:
        raise ValueError(f"nlm_torch expects (C, H, W), got {tuple(y.shape)}")
    c, hh, ww = y.shape
    f = patch // 2
    r = search // 2
    ext = r + (f if aggregate else 0)  # weights are needed on the output region grown by ext
    pad = ext + f + r
    mode = "reflect" if min(hh, ww) > pad else "replicate"
    yf = y if y.is_floating_point() else y.float()
    up = F.pad(yf[None], (pad, pad, pad, pad), mode=mode)[0]  # (C, Hp, Wp)
    # squared-difference images cover z ∈ [−ext−f, H+ext+f): rows pad-ext-f ... of up
    z0 = pad - ext - f
    zh, zw = hh + 2 * (ext + f), ww + 2 * (ext + f)
    base = up[:, z0 : z0 + zh, z0 : z0 + zw]
    u_out = up[:, pad : pad + hh, pad : pad + ww]
    num = torch.zeros_like(u_out)
    den = torch.zeros((1, hh, ww), dtype=up.dtype, device=up.device)
    wmax = torch.zeros_like(den)
    offsets = [(dy, dx) for dy in range(0, r + 1) for dx in range(-r, r + 1) if dy > 0 or dx > 0]
    inv_h2 = 1.0 / max(h * h, 1e-12)
    two_s2 = kappa * sigma * sigma
    # Wt (after optional aggregation) lives on x ∈ [−r, H+r): offset r in each direction
    n_chunks = (len(offsets) + chunk - 1) // chunk
    for ci in range(n_chunks):
        with threads_for(up):  # one thread on small CPU images (busy machines)
            offs = offsets[ci * chunk : (ci + 1) * chunk]
            diff2 = torch.empty((len(offs), c, zh, zw), dtype=up.dtype, device=up.device)
            for k, (dy, dx) in enumerate(offs):
                torch.sub(up[:, z0 + dy : z0 + dy + zh, z0 + dx : z0 + dx + zw], base, out=diff2[k])
            diff2.square_()
            if c > 1:
                diff2 = diff2.sum(dim=1, keepdim=True)
            # w = exp(−max(d² − 2σ², 0)/h²) with d² = (box sum)/(p²·C), as exp(min(0, a·S + b))
            wgt = _box_sum(diff2, patch).mul_(-inv_h2 / (patch * patch * c)).add_(two_s2 * inv_h2)
            wgt = wgt.clamp_(max=0.0).exp_()  # x ∈ [−ext, H+ext)
            if aggregate:
                wgt = _box_sum(wgt, patch)  # x ∈ [−r, H+r); a common scale does not change the ratio
            wgt = wgt[:, 0]  # (K, H+2r, W+2r)
            for k, (dy, dx) in enumerate(offs):
                w_plus = wgt[k, r : r + hh, r : r + ww]
                w_minus = wgt[k, r - dy : r - dy + hh, r - dx : r - dx + ww]
                u_plus = up[:, pad + dy : pad + dy + hh, pad + dx : pad + dx + ww]
                u_minus = up[:, pad - dy : pad - dy + hh, pad - dx : pad - dx + ww]
                num.addcmul_(w_plus, u_plus).addcmul_(w_minus, u_minus)
                den[0].add_(w_plus).add_(w_minus)
                torch.maximum(wmax[0], torch.maximum(w_plus, w_minus), out=wmax[0])
        done = min((ci + 1) * chunk, len(offsets))
        yield Progress(ci + 1, n_chunks, message=f"nlm: offsets {done}/{len(offsets)}")
    if not offsets:  # 1×1 search window: nothing to average
        return y.clone()
    if center == "one":  # w(i, i) = 1 (aggregated: the box sum of ones)
        wmax = torch.full_like(wmax, float(patch * patch if aggregate else 1))
    wmax = torch.where(wmax > 0, wmax, torch.ones_like(wmax))
    num.addcmul_(wmax, u_out)
    den.add_(wmax)
    return (num / den).to(y.dtype)


def nlm_torch(
    y: Any, sigma: float, h: float, patch: int = 5, search: int = 7, aggregate: bool = True,
    center: str = "max",
) -> Any:
    """Non-local means of a (C, H, W) tensor (see :func:`nlm_torch_job`)."""
    job = nlm_torch_job(y, sigma, h, patch, search, aggregate, center=center)
    while True:
        try:
            next(job)
        except StopIteration as stop:
            return stop.value


def nlm_opencv(
    x: np.ndarray, h: float, patch: int = 7, search: int = 21, depth: int = 8, sigma: float = 0.0
) -> np.ndarray:
    """OpenCV's fast NLM (Buades et al. 2005, as implemented in ``cv2.fastNlMeansDenoising``).

    ``x`` float (H, W, C) in [0, 1], C in {1, 3}; ``h`` on the [0, 1] scale. Colour images are
    denoised channel by channel in the orthonormal opponent space (much better than OpenCV's
    CIELAB ``fastNlMeansDenoisingColored`` at equal h). Each channel is mapped affinely from its
    value range widened by 3σ onto the integer range (so that unclipped noise is not clipped),
    with h scaled alike: depth=8 quantises to uint8 (L2 norm), depth=16 to uint16 (L1 norm,
    the only norm OpenCV supports on 16 bits).
    """
    import cv2

    patch, search = _odd(patch), _odd(search)
    if depth not in (8, 16):
        raise ValueError(f"opencv_depth must be 8 or 16, got {depth}")
    color = x.shape[2] == 3
    v = to_opponent(x.astype(np.float64)) if color else x.astype(np.float64)
    if color:  # channel ranges of O·rgb over the RGB cube
        lo = np.minimum(OPPONENT, 0).sum(1)
        hi = np.maximum(OPPONENT, 0).sum(1)
    else:
        lo, hi = np.zeros(1), np.ones(1)
    lo, hi = lo - 3 * sigma, hi + 3 * sigma
    qmax = 255.0 if depth == 8 else 65535.0
    out = np.empty_like(v)
    for k in range(v.shape[2]):
        a = qmax / (hi[k] - lo[k])
        q = np.clip(np.rint((v[:, :, k] - lo[k]) * a), 0, qmax)
        if depth == 8:
            r = cv2.fastNlMeansDenoising(q.astype(np.uint8), None, float(h * a), patch, search)
        else:
            r = cv2.fastNlMeansDenoising(
                q.astype(np.uint16), [float(h * a)], None, patch, search, cv2.NORM_L1
            )
        out[:, :, k] = r / a + lo[k]
    if color:
        out = from_opponent(out)
    return out.astype(np.float32)


@register
class NLMDenoiser(Denoiser):
    """Non-local means (Buades, Coll & Morel 2005; IPOL 2011 parameterisation): torch (CPU/CUDA) or OpenCV."""

    name = "nlm"
    title = "Non-local means"
    citation = "Buades, Coll & Morel, CVPR 2005; Non-Local Means Denoising, IPOL 2011"
    torch_native = True
    cost_s_per_mp = 1.0  # restorelab bench cost
    params = (
        Param("backend", str, "auto", choices=("auto", "torch", "opencv"),
              label="Implementation",
              help="torch (vectorised, CPU or CUDA), OpenCV fast NLM, or auto (= torch)"),
        Param("patch", int, _default_patch, lo=1, hi=15, unit="px", label="Patch side",
              help="patch side (odd)"),
        Param("search", int, _default_search, lo=3, hi=51, unit="px", label="Search window side",
              help="search window side (odd)"),
        Param("h", float, _default_h, lo=1e-4, hi=1.0, log=True, sigma_like=True,
              label="Filtering parameter h",
              help="filtering parameter h of exp(−max(d² − 2σ², 0)/h²) (torch backend)"),
        Param("center", str, _default_center, choices=("one", "max"),
              label="Centre pixel weight",
              help="weight of the pixel itself: 1 (= exp 0) or the max of the others (IPOL)"),
        Param("color", str, "opponent", choices=("opponent", "joint"),
              label="Colour handling",
              help="colour: per channel of an orthonormal luminance/chrominance space, or joint RGB weights"),
        Param("chroma_h", float, 1.5, lo=0.1, hi=10.0, label="Chrominance h multiplier",
              help="h multiplier on the chrominance channels"),
        Param("aggregate", bool, True,
              label="Patch aggregation",
              help="patch-wise aggregation (IPOL): every patch estimate votes for all its pixels"),
        Param("h_opencv", float, _default_h_opencv, lo=1e-4, hi=1.0, log=True, sigma_like=True,
              group="opencv", label="OpenCV filtering h", help="OpenCV's h of exp(−d²/h²) (opencv backend)"),
        Param("opencv_patch", int, 7, lo=1, hi=15, unit="px", group="opencv",
              label="OpenCV patch side", help="OpenCV templateWindowSize (odd; OpenCV recommends 7)"),
        Param("opencv_search", int, 21, lo=3, hi=51, unit="px", group="opencv",
              label="OpenCV search window side", help="OpenCV searchWindowSize (odd; OpenCV recommends 21)"),
        Param("opencv_depth", int, 8, lo=8, hi=16, group="opencv",
              label="OpenCV bit depth", help="8: uint8 (quantised, L2 norm); 16: uint16 with the L1 norm"),
    )

    def _backend(self, p: Mapping[str, Any]) -> str:
        return "opencv" if p["backend"] == "opencv" else "torch"

    def _job(
        self, x: np.ndarray, sigma: float, p: Mapping[str, Any]
    ) -> Generator[Progress, None, np.ndarray]:
        if self._backend(p) == "opencv":
            yield Progress(0, 1, message="nlm: OpenCV")
            out = nlm_opencv(
                x, p["h_opencv"], p["opencv_patch"], p["opencv_search"], p["opencv_depth"], sigma
            )
            yield Progress(1, 1, message="nlm: done")
            return out
        import torch

        from restorelab.device import resolve_device

        dev = resolve_device(self.device)
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))).to(dev)
        out = yield from self._torch_job(t, sigma, p)
        return out.permute(1, 2, 0).cpu().numpy()

    def _torch_job(self, t: Any, sigma: float, p: Mapping[str, Any]) -> Generator[Progress, None, Any]:
        """Torch NLM of a (C, H, W) tensor: jointly, or per channel of the opponent space for colour."""
        import torch

        args = (_odd(p["patch"]), _odd(p["search"]), p["aggregate"])
        chunk = 64 if t.device.type == "cuda" else 16
        if t.shape[0] != 3 or p["color"] == "joint":
            return (yield from nlm_torch_job(t, sigma, p["h"], *args, chunk=chunk, center=p["center"]))
        O = torch.as_tensor(OPPONENT, dtype=t.dtype, device=t.device)
        o = torch.einsum("kc,chw->khw", O, t)
        outs = []
        for k in range(3):  # luminance, then the two chrominance channels (smoothed more)
            h = p["h"] * (1.0 if k == 0 else p["chroma_h"])
            job = nlm_torch_job(o[k : k + 1].contiguous(), sigma, h, *args, chunk=chunk, center=p["center"])
            while True:
                try:
                    ev = next(job)
                except StopIteration as stop:
                    outs.append(stop.value)
                    break
                ev.message = f"channel {k + 1}/3: {ev.message}"
                yield ev
        return torch.einsum("kc,khw->chw", O, torch.cat(outs))

    def _denoise_tensor(self, y: Any, sigma: Any) -> Any:
        """Batched torch path on the tensor's own device (torch backend, σ-resolved defaults)."""
        import torch

        sig = torch.as_tensor(sigma, dtype=torch.float32).flatten()
        outs = []
        for i in range(y.shape[0]):
            s = float(sig[i] if sig.numel() > 1 else sig[0])
            if s == 0:
                outs.append(y[i].clone())
                continue
            p = self.resolved(s)
            job = self._torch_job(y[i], s, p)
            while True:
                try:
                    next(job)
                except StopIteration as stop:
                    outs.append(stop.value)
                    break
        return torch.stack(outs).to(y.dtype)
