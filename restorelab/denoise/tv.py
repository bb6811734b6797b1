"""Total-variation denoising (ROF) by the accelerated primal–dual algorithm, in torch.

Model (Rudin, Osher & Fatemi, "Nonlinear total variation based noise removal
algorithms", Physica D 60, 1992; the seed's R(x) = λ‖∇x‖₁):

    min_x  ½‖x − y‖² + λ Σ_i h_α(|∇x|_i),

with the isotropic discrete gradient of Chambolle (2004) (forward differences, Neumann
boundary) and h_0(t) = t, i.e. exactly ROF when ``huber = 0``. A small Huber radius α > 0
(h_α(t) = t²/2α for t ≤ α, t − α/2 otherwise; the "Huber-ROF" model of Chambolle & Pock
2011, §6.2.2) rounds the corner of |·| at 0: it removes the staircasing of ROF in smooth
regions and gives a slightly higher PSNR; the σ-dependent default is small (σ/10 up to
σ = 25/255, ≈ 2.5/255 there, and 0.06σ at σ = 50/255, see :func:`default_huber`).

For colour images the default is the *vectorial* (channel-coupled) TV,
|∇x|_i = (Σ_c |∇x_c|_i²)^{1/2} (Blomgren & Chan 1998; Bresson & Chan 2008): edges are
shared by the channels, so no colour fringes appear, and it is clearly better than
channel-by-channel TV on colour photos (``color="channels"`` is still available). The
vectorial norm of C noisy channels is larger than one channel's, so the denoiser applies
λ·C^0.34 in that mode (the factor 3^0.34 ≈ 1.45 was fitted on CBSD68 images at σ = 15,
25, 50), and one λ means the same smoothing for gray and colour.

Solver: Chambolle & Pock, "A first-order primal-dual algorithm for convex problems with
applications to imaging", JMIV 40, 2011 — Algorithm 2 (the data term is 1-strongly convex,
so τ_n, σ_n and θ_n are updated for an O(1/n²) rate):

    p ← proj_{|p|≤λ}((p + σ∇x̄) / (1 + σα/λ))
    x⁺ ← (x + τ div p + τ y) / (1 + τ)
    θ = 1/√(1+2τ),  τ ← θτ,  σ ← σ/θ,  x̄ = x⁺ + θ(x⁺ − x)

It stops when the duality gap P(x) − D(p), with
D(p) = ½‖y‖² − ½‖y + div p‖² − (α/2λ)‖p‖², falls below ``tol`` per pixel (relative to
σ²) — the denoiser checks it at iteration 16 and every 2 iterations after — or after
``max_iter`` iterations. The defaults λ(σ), α(σ) and ``tol`` were tuned together for the
best PSNR at that stopping point, well before full convergence: with them the gap test
passes at the first check on BSD68 (16 iterations at σ = 15, 25 and 50). A smaller
``tol`` solves the model more exactly (at σ = 15 and 25 its minimiser has a slightly lower
PSNR than this early stop; at σ = 50 a slightly higher one, at about 1.5× the time).
All images of a batch and all channels are updated together (no Python loop over pixels
or channels).

Speed on CPU (the loop is memory-bound): one iteration is 14 in-place passes over
contiguous memory, about 40 image-sized streams read or written (the dual is stored as
p/λ, shifts are slices of flat views, x_0 = y is read in place, the extrapolated iterate
is stored as x̄/(1 + θ) so that it is one subtraction, ∇x̄ and div p go through one scratch
buffer, |q| is one OpenCV ``magnitude`` pass, and y + λ div p is only formed on gap
checks); the scratch buffers
are kept per thread between calls (fresh pages cost as much as a few iterations), and
images up to 2M values run on one thread (see ``_torchutil.ONE_THREAD_NUMEL``).
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from typing import Any

import numpy as np
import torch

from restorelab.denoise import register
from restorelab.denoise._torchutil import (
    Workspace,
    as_sigma_tensor,
    grad,
    threads_for,
    to_numpy,
    to_tensor,
    workspace,
)
from restorelab.denoise.base import Denoiser
from restorelab.device import resolve_device
from restorelab.jobs import Progress, run_job
from restorelab.params import Param

__all__ = ["TVDenoiser", "tv_denoise", "tv_iterations", "tv_energy", "default_lambda", "default_huber"]


def default_lambda(sigma: float) -> float:
    """λ(σ) = 1.74 σ^1.3: best mean PSNR at the default stopping rule (≈ 15–20 iterations).

    Fitted on BSD68 at σ = 15, 25, 50 (/255), where the best λ is ≈ 0.044, 0.085, 0.21.
    """
    return float(1.74 * sigma**1.3)


#: σ = 25/255, where the Huber radius law bends
_SIGMA_25 = 25.0 / 255.0


def default_huber(sigma: float) -> float:
    """Huber radius α(σ) = σ/10 up to σ = 25/255, σ/10·(25/255σ)^0.75 above (0.06σ at 50/255).

    Below the noise's gradient magnitude, above float noise. The smaller radius at high σ
    is the better one after the default 16 iterations (BSD68, σ = 50: 0.06σ gives
    24.77 dB, 0.1σ 24.76 dB; at σ = 15 and 25, 0.1σ and 0.06σ are within 0.003 dB).
    """
    s = float(sigma)
    return float(0.1 * s * min(1.0, (_SIGMA_25 / s) ** 0.75)) if s > 0 else 0.0


def _as_batch(lam: Any, n: int, like: torch.Tensor, name: str) -> torch.Tensor:
    try:
        return as_sigma_tensor(lam, n, like)
    except ValueError:
        raise ValueError(f"{name} must be finite and >= 0 (one value or one per image)") from None


def _huber_sum(sq: torch.Tensor, a_t: torch.Tensor, scalar_a: float | None) -> torch.Tensor:
    """Σ h_α(√sq) per image, with h_α(t) = t − m + m²/2α, m = min(t, α) (h_0(t) = t)."""
    t = sq.sqrt()
    if scalar_a == 0.0:
        return t.flatten(1).sum(1)
    m = torch.minimum(t, a_t)
    h = t - m + m * m / (2.0 * a_t.clamp_min(1e-30))
    return h.flatten(1).sum(1)


def tv_energy(
    x: torch.Tensor, y: torch.Tensor, lam: Any, huber: Any = 0.0, coupled: bool = True
) -> torch.Tensor:
    """Primal energy ½‖x − y‖² + λ Σ h_α(|∇x|) of each image of an (N, C, H, W) batch (N values)."""
    n = x.shape[0]
    lam_t = _as_batch(lam, n, x, "lam")
    a_t = _as_batch(huber, n, x, "huber")
    gy, gx = grad(x)
    sq = gy * gy + gx * gx
    if coupled:
        sq = sq.sum(dim=1, keepdim=True)
    scalar_a = 0.0 if not bool((a_t > 0).any()) else None
    return 0.5 * ((x - y) ** 2).flatten(1).sum(1) + lam_t.flatten() * _huber_sum(sq, a_t, scalar_a)


def _plane_norm() -> Any:
    """``cv2.magnitude`` (√(a² + b²) in one pass), or None without OpenCV."""
    try:
        import cv2
    except ImportError:  # pragma: no cover - OpenCV is a dependency
        return None
    return cv2.magnitude


def _shifted(t: torch.Tensor, wid: int) -> tuple[torch.Tensor, ...]:
    """Flat views (next row, this row, next column, this column) for forward differences."""
    f = t.view(-1)
    return f[wid:], f[:-wid], f[1:], f[:-1]


def _img_sum(t: torch.Tensor, n: int) -> torch.Tensor:
    """Σ over each image of a batch of n (shape (n,))."""
    return t.reshape(n, -1).sum(1)


def _img_sq(t: torch.Tensor, n: int) -> torch.Tensor:
    """Σ t² over each image of a batch of n (one pass, no temporary)."""
    v = t.reshape(n, -1)
    return torch.dot(v[0], v[0]).reshape(1) if n == 1 else torch.linalg.vecdot(v, v)


def _uniform(v: Any, n: int, like: torch.Tensor, name: str) -> tuple[float | None, torch.Tensor]:
    """(the common value or None, (N, 1, 1, 1) tensor) of a weight given as one value or N values."""
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        f = float(v)
        if not math.isfinite(f) or f < 0:
            raise ValueError(f"{name} must be finite and >= 0 (one value or one per image)")
        return f, torch.full((n, 1, 1, 1), f, dtype=like.dtype, device=like.device)
    t = _as_batch(v, n, like, name)
    f = float(t.flatten()[0])
    return (f if bool((t == f).all()) else None), t


def _energy_inplace(
    x: torch.Tensor,
    y: torch.Tensor,
    lam: float | torch.Tensor,
    alpha: float | torch.Tensor,
    coupled: bool,
    e1: torch.Tensor,
    e2: torch.Tensor,
    r: torch.Tensor,
    mag: Any,
) -> torch.Tensor:
    """:func:`tv_energy` without image-sized temporaries (uses e1, e2, r; ``mag``: see _cp_loop).

    ``lam`` and ``alpha`` are floats or (N, 1, 1, 1) tensors.
    """
    n, c, _h, wid = x.shape
    hi, lo, rt, lf = _shifted(x, wid)
    torch.sub(hi, lo, out=e1.view(-1)[:-wid])
    e1[..., -1, :].zero_()
    torch.sub(rt, lf, out=e2.view(-1)[:-1])
    e2[..., :, -1].zero_()
    if mag is not None:  # per-plane norm, r has x's shape
        mag(e1.view(-1, wid).numpy(), e2.view(-1, wid).numpy(), r.view(-1, wid).numpy())
        t = r
    else:
        e1.square_().addcmul_(e2, e2)
        if coupled and c > 1:
            torch.sum(e1, dim=1, keepdim=True, out=r)
            t = r
        else:
            t = e1
        t.sqrt_()
    reg = _img_sum(t, n)
    if isinstance(alpha, torch.Tensor) or alpha > 0:  # Σ h_α(t) = Σ t − Σ m + Σ m²/2α, m = min(t, α)
        m = e2[:, : t.shape[1]]
        if isinstance(alpha, torch.Tensor):
            torch.minimum(t, alpha, out=m)
            two_a: float | torch.Tensor = 2.0 * alpha.flatten().clamp_min(1e-30)
        else:
            torch.clamp(t, max=alpha, out=m)
            two_a = 2.0 * alpha
        reg = reg - _img_sum(m, n) + _img_sq(m, n) / two_a
    torch.sub(x, y, out=e1)
    return 0.5 * _img_sq(e1, n) + (lam.flatten() if isinstance(lam, torch.Tensor) else lam) * reg


def tv_iterations(
    y: torch.Tensor,
    lam: Any,
    *,
    huber: Any = 0.0,
    coupled: bool = True,
    max_iter: int = 100,
    tol: float = 1e-3,
    noise_sigma: float | None = None,
    check_every: int = 5,
    first_check: int | None = None,
    tau0: float = 0.35,
    accelerate: bool = True,
    gamma: float = 1.0,
) -> Generator[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor], None, torch.Tensor]:
    """Chambolle–Pock iterations for (Huber-)ROF on an (N, C, H, W) float tensor.

    Yields ``(iteration, x, primal_energy, gap)`` after every iteration; energy and gap are
    computed (per image, shape (N,); else ``None``) at iteration ``first_check`` (default
    ``check_every``) and every ``check_every`` iterations after it. ``x`` is the live
    iterate, in a scratch buffer reused by the next run (copy it to keep it). Returns the
    final x. Stops when every image's duality gap
    per pixel is ≤ ``tol``·s² (s = ``noise_sigma``, else the largest λ; ``tol <= 0`` never
    stops early) or at ``max_iter``. ``accelerate=False`` runs the plain Algorithm 1
    (θ = 1, τσ‖∇‖² = 1 with ‖∇‖² ≤ 8); ``gamma`` is the strong-convexity modulus used by
    Algorithm 2 (1 for this data term). ``lam`` and ``huber`` are one value or one per
    image. The input is not modified.

    The dual variable is stored scaled, q = p/λ (|q| ≤ 1), x_0 = y is read in place, and
    the iterate buffers are rotated, so that one iteration is ~14 passes over contiguous
    memory (plus ~15 for each duality-gap check).
    """
    if not isinstance(y, torch.Tensor) or y.ndim != 4:
        raise ValueError(f"expected an (N, C, H, W) tensor, got {getattr(y, 'shape', type(y).__name__)}")
    if not y.is_floating_point():
        y = y.float()
    if not bool(torch.isfinite(y.sum())) and not bool(torch.isfinite(y).all()):
        raise ValueError("image contains NaN or infinite values")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    if check_every < 1:
        raise ValueError(f"check_every must be >= 1, got {check_every}")
    first_check = check_every if first_check is None else max(1, int(first_check))
    n, c, hgt, wid = y.shape
    lam0, lam_t = _uniform(lam, n, y, "lam")
    a0, a_t = _uniform(huber, n, y, "huber")
    lam_max = lam0 if lam0 is not None else float(lam_t.max())
    scale = float(noise_sigma) if noise_sigma else lam_max
    thresh = tol * max(scale, 1e-6) ** 2 * c * hgt * wid
    y = y.contiguous()
    if lam_max <= 0:
        return y.clone()
    ws = workspace("tv")
    try:
        return (yield from _cp_loop(ws, y, lam0, lam_t, a0, a_t, coupled, max_iter, tol, thresh, check_every,
                                    first_check, tau0, accelerate, gamma))
    finally:
        ws.release()


def _cp_loop(
    ws: Workspace, y: torch.Tensor, lam0: float | None, lam_t: torch.Tensor, a0: float | None,
    a_t: torch.Tensor, coupled: bool, max_iter: int, tol: float, thresh: float, check_every: int,
    first_check: int, tau0: float, accelerate: bool, gamma: float,
) -> Generator[tuple[int, torch.Tensor, Any, Any], None, torch.Tensor]:
    """The iterations of :func:`tv_iterations` on buffers of ``ws`` (λ, α: common value or None)."""
    n, c, hgt, wid = y.shape
    if lam0 is not None:
        lam0 = max(lam0, 1e-12)
        lam: float | torch.Tensor = lam0
    else:
        lam_t = lam_t.clamp_min(1e-12)
        lam = lam_t
    alpha: float | torch.Tensor = a0 if a0 is not None else a_t
    scalar = lam0 is not None and a0 is not None
    use_huber = a0 != 0.0  # (a per-image α counts as Huber)
    planes = n * c
    shp = tuple(y.shape)
    per_plane = not coupled or c == 1  # |q| per plane (else summed over the channels)
    # on the CPU, |q| = √(qy² + qx²) in one OpenCV pass (3 torch passes and a slower sqrt)
    mag = (_plane_norm() if per_plane and y.device.type == "cpu" and y.dtype in (torch.float32, torch.float64)
           else None)
    bufs = (ws.get("x", shp, y), ws.get("xb", shp, y))  # x and (scaled) x̄ rotate through these
    qy = ws.get("qy", shp, y)
    qx = ws.get("qx", shp, y)
    d = ws.get("d", shp, y)
    r = ws.get("r", shp if per_plane else (n, 1, hgt, wid), y)
    sq = r if per_plane else ws.get("sq", shp, y)
    tmp = r if per_plane else sq  # free between the prox steps: ∇z, then div q
    xs = ws.get("xs", shp, y) if lam0 is None else None  # z/λ for per-image λ
    shifts = {id(t): _shifted(t, wid) for t in (y, *bufs, *(() if xs is None else (xs,)))}
    qy_a, qx_a = qy.view(-1)[:-wid], qx.view(-1)[:-1]  # q at the pixels with a forward neighbour
    tf = tmp.view(-1)
    t_a, t_b, t_hi, t_rt, t_top = tf[:-wid], tf[:-1], tf[wid:], tf[1:], tf[:wid]
    qy_hi, qy_top = qy.view(-1)[wid:], qy.view(-1)[:wid]
    qy_last, qx_last = qy[..., -1, :], qx[..., :, -1]
    if mag is not None:
        qy2, qx2, r2 = (t.view(-1, wid).numpy() for t in (qy, qx, r))
    ratio = None if scalar else a_t / lam_t  # α/λ: dual strong convexity of the Huber term
    inv_lam_t = 1.0 / lam_t if lam0 is None else None
    e2: torch.Tensor | None = None

    # x_k (cur) and z_k = x̄_k/(1 + θ_k) (bar), the extrapolated iterate scaled so that it
    # is one subtraction; x_0 = x̄_0 = y is read in place, never copied (θ_0 = 0)
    cur, bar = y, y
    tau = float(tau0)
    sig = 1.0 / (8.0 * tau)
    th = 0.0
    for it in range(1, max_iter + 1):
        check = (it >= first_check and (it - first_check) % check_every == 0) or it == max_iter
        # dual ascent q += (σ/λ) ∇x̄ = (σ(1 + θ)/λ) ∇z, forward differences on the flat buffer
        # (the wrap-around entries are the last row / column of q, reset to 0: Neumann)
        if lam0 is not None:
            step = sig * (1.0 + th) / lam0
            hi, lo, rt, lf = shifts[id(bar)]
        else:
            torch.mul(bar, inv_lam_t, out=xs)
            step = sig * (1.0 + th)
            hi, lo, rt, lf = shifts[id(xs)]
        if it == 1:  # q_0 = 0
            torch.sub(hi, lo, out=qy_a).mul_(step)
            torch.sub(rt, lf, out=qx_a).mul_(step)
            qy_last.zero_()
        else:  # through tmp: ∇z is read once, q once
            torch.sub(hi, lo, out=t_a)
            qy_a.add_(t_a, alpha=step)
            torch.sub(rt, lf, out=t_b)
            qx_a.add_(t_b, alpha=step)
            if planes > 1:
                qy_last.zero_()
        qx_last.zero_()
        # prox of σF*: q ← q / max(1 + σα/λ, |q|)  (Huber shrink and projection in one)
        if mag is not None:
            mag(qy2, qx2, r2)
            if not use_huber:
                r.clamp_(min=1.0)
            elif scalar:
                r.clamp_(min=1.0 + sig * a0 / lam0)
            else:
                torch.maximum(r, 1.0 + sig * ratio, out=r)
            qy.div_(r)
            qx.div_(r)
        else:  # the same with r = min(1/|q|, 1/(1 + σα/λ)), |q| summed over channels if coupled
            torch.mul(qy, qy, out=sq)
            sq.addcmul_(qx, qx)
            if sq is not r:
                torch.sum(sq, dim=1, keepdim=True, out=r)
            r.rsqrt_()  # inf where q = 0, cut by the clamp
            if not use_huber:
                r.clamp_(max=1.0)
            elif scalar:
                r.clamp_(max=1.0 / (1.0 + sig * a0 / lam0))
            else:
                torch.minimum(r, 1.0 / (1.0 + sig * ratio), out=r)
            qy.mul_(r)
            qx.mul_(r)
        # primal step x⁺ = (x + τ(y + λ div q)) / (1 + τ) = lerp(x, y, c) + cλ div q with
        # c = τ/(1+τ), into the buffer of z (no longer needed); div q is formed in tmp
        # (the wrapped differences are 0: q's last row / column are 0)
        torch.sub(qy_hi, qy_a, out=t_hi)
        t_top.copy_(qy_top)
        tmp.add_(qx)
        t_rt.sub_(qx_a)
        new = bufs[0] if it == 1 else bar
        cw = tau / (1.0 + tau)
        if lam0 is not None:
            torch.lerp(cur, y, cw, out=new)
            new.add_(tmp, alpha=cw * lam0)
            if check:  # d = y + λ div q, for the dual energy
                torch.add(y, tmp, alpha=lam0, out=d)
        else:
            torch.addcmul(y, lam_t, tmp, out=d)
            torch.lerp(cur, d, cw, out=new)
        if accelerate:
            th = 1.0 / math.sqrt(1.0 + 2.0 * gamma * tau)
            tau *= th
            sig /= th
        else:
            th = 1.0
        # z = x̄/(1 + θ) = x⁺ − (θ/(1 + θ)) x, written over x
        old = bufs[1] if it == 1 else cur
        torch.sub(new, cur, alpha=th / (1.0 + th), out=old)
        cur, bar = new, old
        if check:
            # dual D(q) = ½‖y‖² − ½‖y + λ div q‖² − (αλ/2)‖q‖², then P(x) with d as scratch
            dual = 0.5 * _img_sq(y, n) - 0.5 * _img_sq(d, n)
            if use_huber:
                al = a0 * lam0 if scalar else (a_t * lam_t).flatten()
                dual = dual - 0.5 * al * (_img_sq(qy, n) + _img_sq(qx, n))
            if e2 is None:
                e2 = ws.get("e2", shp, y)
            energy = _energy_inplace(cur, y, lam, alpha, coupled, d, e2, r, mag)
            gap = energy - dual
            yield it, cur, energy, gap
            if tol > 0 and bool((gap <= thresh).all()):
                break
        else:
            yield it, cur, None, None
    return cur.clone()  # the buffers are reused by the next call


def tv_denoise(
    y: torch.Tensor,
    lam: Any,
    *,
    huber: Any = 0.0,
    coupled: bool = True,
    max_iter: int = 100,
    tol: float = 1e-3,
    noise_sigma: float | None = None,
    accelerate: bool = True,
    first_check: int | None = 16,
    check_every: int = 2,
) -> torch.Tensor:
    """Solve (Huber-)ROF for an (N, C, H, W) batch (see :func:`tv_iterations`); returns x̂."""
    gen = tv_iterations(y, lam, huber=huber, coupled=coupled, max_iter=max_iter, tol=tol,
                        noise_sigma=noise_sigma, accelerate=accelerate, first_check=first_check,
                        check_every=check_every)
    with threads_for(y):
        return run_job(gen)


@register
class TVDenoiser(Denoiser):
    """Total variation (ROF, Rudin–Osher–Fatemi 1992): min ½‖x − y‖² + λ‖∇x‖₁ (isotropic).

    Solved by the accelerated primal–dual algorithm of Chambolle & Pock (2011, Alg. 2) in
    torch, on CPU or CUDA; colour uses the channel-coupled (vectorial) TV by default. An
    optional small Huber radius (Chambolle & Pock 2011, §6.2.2) reduces staircasing.
    """

    name = "tv"
    title = "Total variation (ROF)"
    citation = (
        "Rudin, Osher & Fatemi, Physica D 60 (1992); Chambolle & Pock, JMIV 40 (2011), Algorithm 2"
    )
    iterative = True
    torch_native = True
    cost_s_per_mp = 0.3  # restorelab bench cost
    params = (
        Param("lam", float, default_lambda, lo=1e-4, hi=10.0, log=True,
              label="Regularization weight λ",
              help="weight λ of the total variation (larger: smoother; ×C^0.34 for vectorial colour)"),
        Param("huber", float, default_huber, lo=0.0, hi=0.5, sigma_like=True,
              label="Huber radius α",
              help="Huber radius α of |∇x| (0 = exact ROF; small values reduce staircasing)"),
        Param("color", str, "vectorial", choices=("vectorial", "channels"),
              label="Colour coupling",
              help="vectorial: one TV coupling the colour channels; channels: each channel alone"),
        Param("max_iter", int, 60, lo=1, hi=5000, label="Maximum iterations",
              help="maximum number of primal–dual iterations"),
        Param("tol", float, 1e-2, lo=1e-8, hi=1.0, log=True,
              label="Duality-gap tolerance", help="stop when the duality gap per pixel is below tol·σ²"),
        Param("accelerate", bool, True, label="Accelerated (Algorithm 2)",
              help="Chambolle–Pock Algorithm 2 (O(1/n²)) instead of Algorithm 1"),
    )

    @staticmethod
    def _colour_factor(channels: int, p: Mapping[str, Any]) -> float:
        """λ multiplier C^0.34 for the vectorial TV of C > 1 channels (see the module doc)."""
        return float(channels) ** 0.34 if p["color"] == "vectorial" and channels > 1 else 1.0

    def _run(self, y: torch.Tensor, sigma: Any, p: Mapping[str, Any]):
        sig = float(torch.as_tensor(sigma, dtype=torch.float32).max())
        lam = float(p["lam"]) * self._colour_factor(y.shape[1], p)
        return tv_iterations(
            y, lam, huber=p["huber"], coupled=p["color"] == "vectorial", max_iter=int(p["max_iter"]),
            tol=float(p["tol"]), noise_sigma=sig if sig > 0 else None, accelerate=bool(p["accelerate"]),
            first_check=16, check_every=2,
        )

    def _job(
        self, x: np.ndarray, sigma: float, p: Mapping[str, Any]
    ) -> Generator[Progress, None, np.ndarray]:
        dev = resolve_device(self.device)
        y = to_tensor(x, dev)
        total = int(p["max_iter"])
        gen = self._run(y, sigma, p)
        with threads_for(y):  # held across yields; restored when the job ends or is closed
            while True:
                try:
                    it, _xk, energy, gap = next(gen)
                except StopIteration as stop:
                    out = stop.value
                    break
                data = {} if energy is None else {"energy": float(energy.sum()), "gap": float(gap.sum())}
                yield Progress(it, total, message=f"tv: iteration {it}", data=data)
            return to_numpy(out)

    def _denoise_tensor(self, y: Any, sigma: Any) -> Any:
        """(N, C, H, W) → x̂ of the same shape, dtype and device; σ a float or N values.

        λ and α follow each image's σ. Runs on ``self.device`` when one is named, else
        (``auto``) on y's device.
        """
        if not isinstance(y, torch.Tensor) or y.ndim != 4:
            raise ValueError("expected an (N, C, H, W) tensor")
        dev = y.device if str(self.device or "auto").lower() == "auto" else resolve_device(self.device)
        yy = y.detach().to(dev, torch.float32)
        sig = as_sigma_tensor(sigma, y.shape[0], yy).flatten()
        per = [self.resolved(float(s)) for s in sig.tolist()]
        p = self.resolved(float(sig.max()))
        lam = torch.tensor([q["lam"] for q in per], device=dev) * self._colour_factor(y.shape[1], p)
        hub = torch.tensor([q["huber"] for q in per], device=dev)
        out = tv_denoise(
            yy, lam, huber=hub, coupled=p["color"] == "vectorial", max_iter=int(p["max_iter"]),
            tol=float(p["tol"]), noise_sigma=float(sig.max()) or None, accelerate=bool(p["accelerate"]),
        )
        out = torch.where((sig == 0).reshape(-1, 1, 1, 1), yy, out)
        return out.to(y.device, y.dtype)
