"""Matrix-free linear measurement operators for inverse problems.

Kadkhodaie & Simoncelli (2021), Section 3: measurements ``x_c = Mᵀ x`` with a low-rank
``M`` whose columns are orthonormal (``MᵀM = I``), so that ``MMᵀ`` is the orthogonal
projection onto the measured subspace and ``M`` is the pseudo-inverse of ``Mᵀ``.

Every operator acts on the two last axes of a torch tensor ``(..., H, W)`` (all leading
axes — batch, channels — are treated alike) and maps it to measurements ``(..., m)``:

* ``Mt(image) -> meas``  (``Mᵀ``),
* ``M(meas) -> image``   (``M``),
* ``proj(image) = M Mᵀ image``.

They also accept numpy arrays in the library's image layout: ``(H, W)`` ↔ ``(m,)`` and
``(H, W, C)`` ↔ ``(C, m)``. Constructors: :func:`inpaint`, :func:`random_pixels`,
:func:`super_resolution`, :func:`deblur`, :func:`compressive` and :func:`make`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from restorelab.image import as_float_image, check_finite
from restorelab.params import Param

__all__ = [
    "Operator",
    "PixelOperator",
    "BlockAverage",
    "FourierSubset",
    "inpaint",
    "centered_box_mask",
    "random_pixels",
    "super_resolution",
    "deblur",
    "compressive",
    "DenseOperator",
    "make",
    "TASKS",
    "TASK_PARAMS",
]

TASKS = ("inpaint", "pixels", "sr", "deblur", "cs")

#: per-task parameter declarations (the CLI and the GUI build their widgets from these)
TASK_PARAMS: dict[str, tuple[Param, ...]] = {
    "inpaint": (
        Param("box", int, 0, label="Hole side", lo=0, hi=100000, unit="px",
              help="side of the centred square hole when no mask is given (0: 30/64 of the smaller side)"),
    ),
    "pixels": (
        Param("fraction", float, 0.1, label="Fraction of pixels kept", lo=1e-4, hi=1.0, log=True,
              help="fraction of pixels measured (kept); the rest are missing"),
        Param("seed", int, 0, label="Random seed",
              lo=0, hi=2**31 - 1, help="seed of the random pixel selection"),
    ),
    "sr": (Param("factor", int, 4, label="Downsampling factor",
                 lo=1, hi=64, help="super-resolution factor s (s×s block averages)"),),
    "deblur": (
        Param("keep_fraction", float, 0.1, label="Fraction of frequencies kept", lo=1e-4, hi=1.0, log=True,
              help="fraction of Fourier coefficients kept (a centred low-frequency band)"),
    ),
    "cs": (
        Param("fraction", float, 0.1, label="Measurement ratio", lo=1e-4, hi=1.0, log=True,
              help="measurements as a fraction of the number of pixels"),
        Param("seed", int, 0, label="Random seed",
              lo=0, hi=2**31 - 1, help="seed of the random signs and frequencies"),
    ),
}


def _check_shape(shape: Any) -> tuple[int, int]:
    try:
        s = tuple(int(v) for v in shape)
    except (TypeError, ValueError):
        raise TypeError(f"shape must be (H, W), got {shape!r}") from None
    if len(s) == 3:  # (H, W, C): the operator acts on every channel alike
        s = s[:2]
    if len(s) != 2 or s[0] < 1 or s[1] < 1:
        raise ValueError(f"shape must be (H, W) with positive sides, got {shape!r}")
    return s  # type: ignore[return-value]


class Operator:
    """A linear measurement operator with orthonormal columns (``MᵀM = I``).

    Subclasses implement ``_Mt`` and ``_M`` on tensors ``(..., H, W)`` / ``(..., m)`` and
    may override ``_proj`` with a faster ``M Mᵀ``.
    """

    task: str = ""

    def __init__(self, shape: Sequence[int], m: int, info: dict[str, Any]) -> None:
        self.shape: tuple[int, int] = _check_shape(shape)
        self.m = int(m)
        self.info = dict(info)
        self._cache: dict[tuple[str, str], torch.Tensor] = {}

    # -- buffers on the right device ------------------------------------------------------
    def _buf(self, name: str, like: torch.Tensor) -> torch.Tensor:
        key = (name, str(like.device))
        t = self._cache.get(key)
        if t is None:
            t = getattr(self, "_" + name + "_cpu").to(like.device)
            self._cache[key] = t
        return t

    @property
    def n(self) -> int:
        """Number of pixels per channel, N = H·W."""
        return self.shape[0] * self.shape[1]

    # -- public API: tensors or numpy -------------------------------------------------------
    def Mt(self, image: Any) -> Any:
        """Measurements ``x_c = Mᵀ image``: ``(..., H, W) -> (..., m)``."""
        if isinstance(image, np.ndarray):
            t, back = _np_image_in(image, self.shape)
            return _np_meas_out(self._Mt(t), back)
        self._check_image(image)
        return self._Mt(image)

    def M(self, meas: Any) -> Any:
        """Image ``M meas``: ``(..., m) -> (..., H, W)`` (the pseudo-inverse of ``Mᵀ``)."""
        if isinstance(meas, np.ndarray):
            if meas.ndim not in (1, 2) or meas.shape[-1] != self.m:
                raise ValueError(f"measurements must be (m,) or (C, m) with m = {self.m}, got {meas.shape}")
            t = torch.from_numpy(np.ascontiguousarray(meas))
            out = self._M(t)
            return out.numpy() if meas.ndim == 1 else np.ascontiguousarray(out.permute(1, 2, 0).numpy())
        if not isinstance(meas, torch.Tensor):
            raise TypeError(f"expected a numpy array or torch tensor, got {type(meas).__name__}")
        if meas.ndim < 1 or meas.shape[-1] != self.m:
            raise ValueError(f"measurements must end with m = {self.m}, got shape {tuple(meas.shape)}")
        return self._M(meas)

    def proj(self, image: Any) -> Any:
        """Orthogonal projection ``M Mᵀ image`` onto the measured subspace."""
        if isinstance(image, np.ndarray):
            t, back = _np_image_in(image, self.shape)
            return back(self._proj(t))
        self._check_image(image)
        return self._proj(image)

    def degraded(self, image: np.ndarray) -> np.ndarray:
        """What the measurements show, as an image: ``M Mᵀ image`` (for display)."""
        return self.proj(image)

    def describe(self) -> dict[str, Any]:
        """Plain-data description (task, shape, measurements, constructor arguments)."""
        return {"task": self.task, "shape": list(self.shape), "m": self.m, **self.info}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.info.items())
        return f"{type(self).__name__}(shape={self.shape}, m={self.m}{', ' + args if args else ''})"

    # -- to implement ---------------------------------------------------------------------
    def _Mt(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _M(self, c: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _proj(self, x: torch.Tensor) -> torch.Tensor:
        return self._M(self._Mt(x))

    def _check_image(self, x: Any) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a numpy array or torch tensor, got {type(x).__name__}")
        if x.ndim < 2 or tuple(x.shape[-2:]) != self.shape:
            raise ValueError(f"image must end with (H, W) = {self.shape}, got shape {tuple(x.shape)}")


def _np_image_in(image: np.ndarray, shape: tuple[int, int]) -> tuple[torch.Tensor, Any]:
    """A numpy image as a tensor (C, H, W) or (H, W), read by the one image policy
    (:func:`restorelab.image.as_float_image`: uint8 → x/255, uint16 → x/65535, bool → 0/1,
    NaN/inf refused). Float arrays keep their precision (float64 stays float64): the
    operators are linear maps also applied to residuals and noise, whose adjoint identities
    hold to float64 accuracy."""
    if image.dtype.kind == "f":
        check_finite(image, "image")
    else:
        conv = as_float_image(image, name="image")
        image = conv.reshape(image.shape)  # keep an (H, W, 1) layout
    if image.ndim == 2:
        t = torch.from_numpy(np.ascontiguousarray(image))
        chan = False
    elif image.ndim == 3:
        t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(image, 2, 0)))
        chan = True
    else:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    if tuple(t.shape[-2:]) != shape:
        raise ValueError(f"image is {image.shape[:2]} but the operator expects {shape}")
    if t.dtype == torch.float16:
        t = t.to(torch.float32)

    def back(out: torch.Tensor) -> np.ndarray:
        o = out.detach().cpu()
        return np.ascontiguousarray(o.permute(1, 2, 0).numpy() if chan else o.numpy())

    back.channels = chan  # type: ignore[attr-defined]
    return t, back


def _np_meas_out(meas: torch.Tensor, back: Any) -> np.ndarray:
    return np.ascontiguousarray(meas.detach().cpu().numpy())


# ---------------------------------------------------------------------------------------
# pixel selection: inpainting and random missing pixels
# ---------------------------------------------------------------------------------------
class PixelOperator(Operator):
    """Measure a subset of pixels: ``Mᵀx = x[measured]``, ``M`` puts values back (zeros elsewhere)."""

    def __init__(self, measured: np.ndarray, task: str, info: dict[str, Any]) -> None:
        measured = np.asarray(measured, dtype=bool)
        if measured.ndim != 2:
            raise ValueError(f"a pixel mask must be 2-D (H, W), got shape {measured.shape}")
        idx = np.flatnonzero(measured.ravel())
        super().__init__(measured.shape, idx.size, info)
        self.task = task
        self.measured = measured.copy()
        self._idx_cpu = torch.from_numpy(idx.astype(np.int64))
        self._mask_cpu = torch.from_numpy(measured.copy())

    def _Mt(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(-2)[..., self._buf("idx", x)]

    def _M(self, c: torch.Tensor) -> torch.Tensor:
        out = c.new_zeros(*c.shape[:-1], self.n)
        out[..., self._buf("idx", c)] = c
        return out.unflatten(-1, self.shape)

    def _proj(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._buf("mask", x).to(x.dtype)


def centered_box_mask(shape: Sequence[int], box: int = 0) -> np.ndarray:
    """Boolean (H, W) mask, True on a centred ``box``×``box`` square (0: 30/64 of the smaller side)."""
    h, w = _check_shape(shape)
    b = int(box) if box else max(1, round(min(h, w) * 30 / 64))
    b = min(b, h, w)
    m = np.zeros((h, w), bool)
    t, left = (h - b) // 2, (w - b) // 2
    m[t : t + b, left : left + b] = True
    return m


def inpaint(mask: Any) -> PixelOperator:
    """Inpainting with a user mask: **non-zero (white) marks the pixels to fill**.

    The measured pixels are the others. ``mask`` is (H, W) or (H, W, C) (a pixel is to be
    filled when any channel is non-zero), numpy or torch.
    """
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be an array, got {type(mask).__name__}")
    if mask.ndim == 3:
        mask = np.any(mask != 0, axis=2)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"mask must be a non-empty (H, W) array, got shape {mask.shape}")
    if mask.dtype != bool and np.issubdtype(mask.dtype, np.floating) and not np.isfinite(mask).all():
        raise ValueError("mask contains NaN or infinite values")
    fill = mask != 0
    if not fill.any():
        raise ValueError("the inpainting mask is empty: mark the pixels to fill with non-zero (white) values")
    return PixelOperator(~fill, "inpaint", {"filled": int(fill.sum())})


def random_pixels(shape: Sequence[int], fraction: float = 0.1, seed: int = 0) -> PixelOperator:
    """Random missing pixels: a seeded random ``fraction`` of the pixels is **measured** (kept).

    Kadkhodaie & Simoncelli (2021), Fig. 5 keep 10 % of the pixels (``fraction=0.1``).
    """
    h, w = _check_shape(shape)
    fraction = float(fraction)
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction of measured pixels must be in (0, 1], got {fraction}")
    k = max(1, round(fraction * h * w))
    rng = np.random.default_rng(int(seed))
    idx = rng.choice(h * w, size=k, replace=False)
    measured = np.zeros(h * w, bool)
    measured[idx] = True
    return PixelOperator(measured.reshape(h, w), "pixels", {"fraction": fraction, "seed": int(seed)})


# ---------------------------------------------------------------------------------------
# super-resolution: block averages
# ---------------------------------------------------------------------------------------
class BlockAverage(Operator):
    """s×s block sums normalised by 1/√(block size): ``Mᵀx = Σ_block x / √n_b``.

    Then ``MᵀM = I`` and ``MMᵀ`` replaces each block by its average (an orthogonal
    projection). Partial blocks at the right/bottom border (H or W not divisible by s)
    are normalised by their own size, so the operator stays exactly orthonormal.
    """

    task = "sr"

    def __init__(self, shape: Sequence[int], factor: int) -> None:
        h, w = _check_shape(shape)
        s = int(factor)
        if s < 1:
            raise ValueError(f"super-resolution factor must be >= 1, got {factor}")
        self.factor = s
        self.lr_shape = (math.ceil(h / s), math.ceil(w / s))
        super().__init__((h, w), self.lr_shape[0] * self.lr_shape[1], {"factor": s})
        ch = np.minimum(s, h - s * np.arange(self.lr_shape[0]))
        cw = np.minimum(s, w - s * np.arange(self.lr_shape[1]))
        counts = (ch[:, None] * cw[None, :]).astype(np.float64)
        self._scale_cpu = torch.from_numpy(1.0 / np.sqrt(counts))  # (hb, wb)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.shape
        s = self.factor
        ph, pw = self.lr_shape[0] * s - h, self.lr_shape[1] * s - w
        if ph or pw:
            x = torch.nn.functional.pad(x, (0, pw, 0, ph))
        return x

    def _Mt(self, x: torch.Tensor) -> torch.Tensor:
        s = self.factor
        hb, wb = self.lr_shape
        xp = self._pad(x)
        sums = xp.unflatten(-1, (wb, s)).unflatten(-3, (hb, s)).sum(dim=(-3, -1))
        return (sums * self._buf("scale", x).to(x.dtype)).flatten(-2)

    def _M(self, c: torch.Tensor) -> torch.Tensor:
        s = self.factor
        v = c.unflatten(-1, self.lr_shape) * self._buf("scale", c).to(c.dtype)
        up = v.repeat_interleave(s, dim=-2).repeat_interleave(s, dim=-1)
        return up[..., : self.shape[0], : self.shape[1]]

    def low_resolution(self, meas: Any) -> Any:
        """The block averages as a small image ``(..., ⌈H/s⌉, ⌈W/s⌉)`` (numpy (C, m) → (h, w, C))."""
        if isinstance(meas, np.ndarray):
            out = self.low_resolution(torch.from_numpy(np.ascontiguousarray(meas))).numpy()
            return np.moveaxis(out, 0, -1) if meas.ndim == 2 else out
        return meas.unflatten(-1, self.lr_shape) * self._buf("scale", meas).to(meas.dtype)

    def measurements_from_low_resolution(self, lowres: Any) -> Any:
        """Inverse of :meth:`low_resolution`: a small image of block averages → ``x_c``."""
        if isinstance(lowres, np.ndarray):
            arr = np.moveaxis(lowres, -1, 0) if lowres.ndim == 3 else lowres
            t = torch.from_numpy(np.ascontiguousarray(arr))
            return self.measurements_from_low_resolution(t).numpy()
        if tuple(lowres.shape[-2:]) != self.lr_shape:
            raise ValueError(f"low-resolution image must be {self.lr_shape}, got {tuple(lowres.shape[-2:])}")
        return (lowres / self._buf("scale", lowres).to(lowres.dtype)).flatten(-2)


def super_resolution(shape: Sequence[int], factor: int = 4) -> BlockAverage:
    """Super-resolution by s×s block averaging (``MMᵀ`` = block-average projection)."""
    return BlockAverage(shape, factor)


# ---------------------------------------------------------------------------------------
# Fourier subsets: deblurring (low-pass band) and compressive sensing (random frequencies)
# ---------------------------------------------------------------------------------------
class FourierSubset(Operator):
    """Keep a conjugate-symmetric set K of 2-D DFT coefficients, as a REAL orthonormal operator.

    With the unitary DFT ``X = F x`` of a real image, the kept set K is closed under
    ``k → −k``; each self-conjugate frequency (``k = −k``, real coefficient) gives one
    measurement ``X_k`` and each conjugate pair {k, −k} gives two, ``√2 Re X_k`` and
    ``√2 Im X_k``. These rows are orthonormal, so ``MᵀM = I`` exactly and
    ``MMᵀ = F⁻¹ diag(1_K) F`` is a real symmetric projection (the original code's
    band-pass mask is only approximately symmetric). With ``signs`` (±1 per pixel) the
    operator is ``F_K D`` — a structured random orthogonal transform for compressive sensing.
    """

    def __init__(self, keep: np.ndarray, task: str, info: dict[str, Any], signs: np.ndarray | None = None):
        keep = np.asarray(keep, dtype=bool)
        h, w = keep.shape
        ky, kx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        neg = ((-ky) % h) * w + ((-kx) % w)
        flat = np.arange(h * w).reshape(h, w)
        if not np.array_equal(keep.ravel(), keep.ravel()[neg.ravel()]):
            raise ValueError("the kept frequency set must be conjugate-symmetric")
        k = keep.ravel()
        selfc = k & (flat.ravel() == neg.ravel())
        pair = k & (flat.ravel() < neg.ravel())
        self_idx = np.flatnonzero(selfc)
        pair_idx = np.flatnonzero(pair)
        super().__init__((h, w), self_idx.size + 2 * pair_idx.size, info)
        self.task = task
        self.keep = keep.copy()
        self._self_cpu = torch.from_numpy(self_idx.astype(np.int64))
        self._pair_cpu = torch.from_numpy(pair_idx.astype(np.int64))
        self._negpair_cpu = torch.from_numpy(neg.ravel()[pair_idx].astype(np.int64))
        self._rkeep_cpu = torch.from_numpy(keep[:, : w // 2 + 1].copy())
        self._signs_cpu = None if signs is None else torch.from_numpy(np.asarray(signs, np.float32))
        self.n_self, self.n_pair = self_idx.size, pair_idx.size

    def _sign(self, x: torch.Tensor) -> torch.Tensor:
        if self._signs_cpu is None:
            return x
        return x * self._buf("signs", x).to(x.dtype)

    def _Mt(self, x: torch.Tensor) -> torch.Tensor:
        X = torch.fft.fft2(self._sign(x), norm="ortho").flatten(-2)
        r2 = math.sqrt(2.0)
        a = X[..., self._buf("self", x)].real
        p = X[..., self._buf("pair", x)]
        return torch.cat([a, r2 * p.real, r2 * p.imag], dim=-1)

    def _M(self, c: torch.Tensor) -> torch.Tensor:
        ns, npair = self.n_self, self.n_pair
        a, b, d = c[..., :ns], c[..., ns : ns + npair], c[..., ns + npair :]
        cdt = torch.complex128 if c.dtype == torch.float64 else torch.complex64
        Z = torch.zeros(*c.shape[:-1], self.n, dtype=cdt, device=c.device)
        r2 = math.sqrt(2.0)
        Z[..., self._buf("self", c)] = a.to(cdt)
        Z[..., self._buf("pair", c)] = torch.complex(b, d).to(cdt) / r2
        Z[..., self._buf("negpair", c)] = torch.complex(b, -d).to(cdt) / r2
        x = torch.fft.ifft2(Z.unflatten(-1, self.shape), norm="ortho").real.to(c.dtype)
        return self._sign(x)

    def _proj(self, x: torch.Tensor) -> torch.Tensor:
        X = torch.fft.rfft2(self._sign(x), norm="ortho")
        X = X * self._buf("rkeep", x).to(X.real.dtype)
        return self._sign(torch.fft.irfft2(X, s=self.shape, norm="ortho").to(x.dtype))


def _signed_freqs(n: int) -> np.ndarray:
    return np.fft.fftfreq(n) * n  # 0, 1, ..., -1 (integers as floats)


def deblur(shape: Sequence[int], keep_fraction: float = 0.1) -> FourierSubset:
    """Deblurring (spectral super-resolution): keep a centred low-frequency band of DFT coefficients.

    The band is the rectangle |k_y| ≤ K_y, |k_x| ≤ K_x (signed frequencies) with
    K = ⌊√keep_fraction · n/2⌋ per axis, which is conjugate-symmetric; the Nyquist
    frequency is kept only when the band covers the whole axis.
    """
    h, w = _check_shape(shape)
    f = float(keep_fraction)
    if not 0 < f <= 1:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    if f >= 1:
        keep = np.ones((h, w), bool)
        kyy, kxx = h // 2, w // 2
    else:
        kyy = int(math.floor(math.sqrt(f) * h / 2))
        kxx = int(math.floor(math.sqrt(f) * w / 2))
        fy, fx = np.abs(_signed_freqs(h)), np.abs(_signed_freqs(w))
        keep = (fy[:, None] <= kyy) & (fx[None, :] <= kxx)
        # a band reaching the Nyquist frequency of an even axis keeps it (it is its own conjugate)
        if h % 2 == 0 and kyy >= h // 2:
            keep |= (fy[:, None] == h // 2) & (fx[None, :] <= kxx)
        if w % 2 == 0 and kxx >= w // 2:
            keep |= (fx[None, :] == w // 2) & (fy[:, None] <= kyy)
    return FourierSubset(keep, "deblur", {"keep_fraction": f, "band": [kyy, kxx]})


def compressive(shape: Sequence[int], fraction: float = 0.1, seed: int = 0) -> FourierSubset:
    """Compressive sensing with a fast structured random orthogonal transform.

    ``Mᵀx = S F D x``: random ±1 signs ``D``, the unitary 2-D DFT ``F`` (as real
    orthonormal rows, see :class:`FourierSubset`) and a random conjugate-symmetric subset
    ``S`` of ≈ ``fraction``·N frequencies. O(N log N) per application at full image size,
    instead of the dense random basis the original code applies to 60×60 crops.
    """
    h, w = _check_shape(shape)
    f = float(fraction)
    if not 0 < f <= 1:
        raise ValueError(f"fraction of measurements must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(int(seed))
    signs = rng.choice(np.array([-1.0, 1.0], np.float32), size=(h, w))
    ky, kx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    flat = (ky * w + kx).ravel()
    neg = (((-ky) % h) * w + ((-kx) % w)).ravel()
    reps = np.flatnonzero(flat <= neg)  # one representative per conjugate class
    sizes = np.where(flat[reps] == neg[reps], 1, 2)
    order = rng.permutation(reps.size)
    target = max(1, round(f * h * w))
    csum = np.cumsum(sizes[order])
    chosen = reps[order[: max(1, int(np.searchsorted(csum, target, side="right")))]]
    keep = np.zeros(h * w, bool)
    keep[chosen] = True
    keep[neg[chosen]] = True
    return FourierSubset(keep.reshape(h, w), "cs", {"fraction": f, "seed": int(seed)}, signs=signs)


class DenseOperator(Operator):
    """An explicit N×m matrix ``M`` with orthonormal columns, for images of ``shape`` (N = H·W).

    For tiny problems and demos (e.g. the 2-D manifold, where an "image" is 1×2).
    """

    task = "dense"

    def __init__(self, matrix: np.ndarray, shape: Sequence[int]) -> None:
        B = np.asarray(matrix, dtype=np.float64)
        if B.ndim == 1:
            B = B[:, None]
        hw = _check_shape(shape)
        if B.ndim != 2 or B.shape[0] != hw[0] * hw[1] or B.shape[1] > B.shape[0]:
            raise ValueError(f"matrix must be (H·W, m) with m <= H·W for shape {hw}, got {B.shape}")
        if not np.allclose(B.T @ B, np.eye(B.shape[1]), atol=1e-6):
            raise ValueError("the columns of M must be orthonormal (MᵀM = I)")
        super().__init__(hw, B.shape[1], {})
        self.matrix = B
        self._B_cpu = torch.from_numpy(B)

    def _Mt(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(-2) @ self._buf("B", x).to(x.dtype)

    def _M(self, c: torch.Tensor) -> torch.Tensor:
        return (c @ self._buf("B", c).to(c.dtype).T).unflatten(-1, self.shape)


def make(task: str, shape: Sequence[int], *, mask: Any = None, **kw: Any) -> Operator:
    """Build the operator of ``task`` (``inpaint|pixels|sr|deblur|cs``) for images of ``shape``.

    Keyword arguments follow :data:`TASK_PARAMS` (``box``; ``fraction``, ``seed``;
    ``factor``; ``keep_fraction``); ``inpaint`` takes ``mask`` (non-zero = pixels to fill)
    or, without one, a centred ``box``×``box`` hole.
    """
    from restorelab.params import resolve_params

    if task not in TASK_PARAMS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    hw = _check_shape(shape)
    p = resolve_params(TASK_PARAMS[task], kw)
    if task == "inpaint":
        if mask is None:
            mask = centered_box_mask(hw, p["box"])
        op: Operator = inpaint(mask)
        if op.shape != hw:
            raise ValueError(f"mask is {op.shape} but the image is {hw}")
        return op
    if mask is not None:
        raise ValueError(f"a mask only applies to the inpaint task, not {task!r}")
    if task == "pixels":
        return random_pixels(hw, p["fraction"], p["seed"])
    if task == "sr":
        return super_resolution(hw, p["factor"])
    if task == "deblur":
        return deblur(hw, p["keep_fraction"])
    return compressive(hw, p["fraction"], p["seed"])
