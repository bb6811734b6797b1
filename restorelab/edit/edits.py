"""The image edits of Pérez et al. (2003) and Di Martino et al. ("Poisson Image Editing", IPOL
2016, §2): texture flattening, local illumination change, local colour change, contrast
enhancement and seamless tiling.

Each edit builds a guidance field v from the image itself and solves Δf = div v:
inside ``mask`` with the image as Dirichlet boundary (exact sparse solve, border pixels free),
or, with ``mask=None``, on the whole image with the free (Neumann) border by the DCT (the
image's mean is kept); tiling solves on the torus by the FFT.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from restorelab.edit._image import as_mask, from_float, merge_alpha, split_alpha, to_float
from restorelab.edit.guidance import edge_gradient, fattal_guidance, pixel_gradient
from restorelab.edit.solvers import channel_mean, solve_guided, solve_periodic_fft

__all__ = ["texture_flatten", "illumination_change", "color_change", "contrast_enhance", "seamless_tile"]


def _prepare(img: Any, mask: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, bool]:
    f, _ = to_float(img)
    color, alpha = split_alpha(f)
    gray = color.ndim == 2
    t = color[:, :, None] if gray else color
    m = None if mask is None else as_mask(mask, t.shape[:2])
    return t, alpha, m, gray


def _finish(out: np.ndarray, alpha: np.ndarray | None, gray: bool) -> np.ndarray:
    if gray:
        out = out[:, :, 0]
    return merge_alpha(out.astype(np.float32, copy=False), alpha)


def texture_flatten(
    img: Any,
    mask: Any = None,
    low_threshold: float = 30.0,
    high_threshold: float = 45.0,
    kernel_size: int = 3,
) -> np.ndarray:
    """Texture flattening (Pérez et al. 2003, §4; IPOL 2016 §2.3): v = M ∇f with M = 1 on the
    grid edges touching a Canny edge pixel (``cv2.Canny`` of the 8-bit luma image, as OpenCV's
    ``textureFlattening`` does, with the two
    hysteresis thresholds, on the 0–255 gradient scale, and Sobel ``kernel_size`` 3, 5 or 7),
    0 elsewhere. Whole image (Neumann, mean kept) when ``mask`` is None."""
    if int(kernel_size) != kernel_size or int(kernel_size) not in (3, 5, 7):
        raise ValueError(f"kernel_size must be 3, 5 or 7, got {kernel_size!r}")
    lo, hi = float(low_threshold), float(high_threshold)
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi < 0:
        raise ValueError("Canny thresholds must be finite and non-negative")
    t, alpha, m, gray = _prepare(img, mask)
    img8 = from_float(t, np.uint8)
    if img8.shape[2] == 3:
        img8 = cv2.cvtColor(img8, cv2.COLOR_RGB2GRAY)
    else:
        img8 = np.ascontiguousarray(img8[:, :, 0])
    edges = cv2.Canny(np.ascontiguousarray(img8), float(low_threshold), float(high_threshold),
                      apertureSize=int(kernel_size), L2gradient=False) > 0

    def guidance(region: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
        f = t[region]
        e = edges[region]
        gx, gy = edge_gradient(f)
        kx = (e[:, 1:] | e[:, :-1])[:, :, None]
        ky = (e[1:] | e[:-1])[:, :, None]
        return gx * kx, gy * ky

    return _finish(solve_guided(t, m, guidance), alpha, gray)


def illumination_change(img: Any, mask: Any = None, alpha: float = 0.2, beta: float = 0.2) -> np.ndarray:
    """Local illumination change (Pérez et al. 2003 §4 after Fattal et al. 2002; IPOL 2016
    §2.4): v = a^β |∇f|^{−β} ∇f with a = ``alpha`` × the mean gradient norm of f over the mask
    (per channel). β > 0 compresses large gradients (evens out highlights and shadows), β < 0
    expands them; β = 0 leaves the image unchanged."""
    if not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    if not np.isfinite(beta):
        raise ValueError(f"beta must be finite, got {beta!r}")
    t, a_ch, m, gray = _prepare(img, mask)
    gx, gy = pixel_gradient(t)
    norm = np.sqrt(gx * gx + gy * gy)
    mean_norm = channel_mean(norm) if m is None else norm[m].mean(axis=0)
    a_abs = (float(alpha) * mean_norm).astype(t.dtype)

    def guidance(region: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
        return fattal_guidance(gx[region], gy[region], norm[region], a_abs, float(beta))

    return _finish(solve_guided(t, m, guidance), a_ch, gray)


def color_change(
    img: Any, mask: Any = None, red_mul: float = 1.5, green_mul: float = 0.5, blue_mul: float = 0.5
) -> np.ndarray:
    """Local colour change (Pérez et al. 2003 §4, ``cv2.colorChange``): v = (c_r ∇f_r, c_g ∇f_g,
    c_b ∇f_b), the image's own gradients scaled per channel (RGB order), solved inside ``mask``
    so that the selection's colours change while its border stays seamless."""
    muls = np.array([red_mul, green_mul, blue_mul], dtype=np.float64)
    if not np.isfinite(muls).all():
        raise ValueError("colour multipliers must be finite")
    t, alpha, m, gray = _prepare(img, mask)
    if gray:
        raise ValueError("color_change needs a colour (RGB) image; use contrast_enhance on gray images")
    k = muls[: t.shape[2]].astype(np.float32)

    def guidance(region: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
        gx, gy = edge_gradient(t[region])
        return gx * k, gy * k

    def potential(region: tuple[slice, slice]) -> np.ndarray:
        return t[region] * k

    return _finish(solve_guided(t, m, guidance, potential=potential), alpha, gray)


def contrast_enhance(img: Any, mask: Any = None, factor: float = 1.5) -> np.ndarray:
    """Contrast enhancement by scaled gradients (IPOL 2016 §2.5): v = ``factor`` ∇f. On the
    whole image (Neumann, mean kept) this is exactly ``mean + factor (f − mean)``; inside a mask
    the change fades to zero at the boundary."""
    if not np.isfinite(factor):
        raise ValueError(f"factor must be finite, got {factor!r}")
    t, alpha, m, gray = _prepare(img, mask)

    def guidance(region: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
        gx, gy = edge_gradient(t[region])
        return gx * np.float32(factor), gy * np.float32(factor)

    def potential(region: tuple[slice, slice]) -> np.ndarray:
        return t[region] * np.float32(factor)

    return _finish(solve_guided(t, m, guidance, potential=potential), alpha, gray)


def seamless_tile(img: Any) -> np.ndarray:
    """Seamless tiling (Pérez et al. 2003 §4; IPOL 2016 §2.6): keep the image's gradients, set
    the guidance across the wrap-around seams to zero and solve Δf = div v on the torus (FFT,
    mean kept). The result tiles without visible seams: the wrap-around differences are as
    small as the interior ones."""
    t, alpha, _m, gray = _prepare(img, None)
    h, w = t.shape[:2]
    if h < 2 or w < 2:
        raise ValueError(f"seamless_tile needs at least 2x2 pixels, got {h}x{w}")
    vx = np.zeros_like(t)
    vy = np.zeros_like(t)
    vx[:, :-1] = t[:, 1:] - t[:, :-1]  # the wrap edge (j = W−1 → 0) keeps guidance 0
    vy[:-1] = t[1:] - t[:-1]
    div = vx - np.roll(vx, 1, axis=1) + vy - np.roll(vy, 1, axis=0)
    out = solve_periodic_fft(div, channel_mean(t))
    return _finish(out, alpha, gray)
