"""Image quality metrics through ``skimage.metrics``.

PSNR = 10 log10(R² / MSE) with R the data range (1 for [0, 1] images); SSIM is the
structural similarity of Wang, Bovik, Sheikh & Simoncelli (IEEE TIP 2004) with
scikit-image's defaults (7×7 uniform window), averaged over colour channels.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["psnr", "ssim"]


def _pair(ref: Any, x: Any) -> tuple[np.ndarray, np.ndarray]:
    a = _as_array(ref, "ref")
    b = _as_array(x, "x")
    if a.shape != b.shape:
        raise ValueError(f"ref and x differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3) or a.size == 0:
        raise ValueError(f"expected non-empty (H, W) or (H, W, C) images, got shape {a.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("images contain NaN or infinite values")
    return a, b


def _as_array(v: Any, name: str) -> np.ndarray:
    if not isinstance(v, np.ndarray):
        torch = sys.modules.get("torch")  # a tensor implies torch is imported
        if torch is not None and isinstance(v, torch.Tensor):
            t = v.detach().cpu().double()
            return (t.permute(1, 2, 0) if t.ndim == 3 else t).numpy()
        raise TypeError(f"{name} must be a numpy array, got {type(v).__name__}")
    if v.dtype == bool or not np.issubdtype(v.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {v.dtype}")
    return v.astype(np.float64, copy=False)


def psnr(ref: Any, x: Any, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: 10·log10(data_range² / mean((ref − x)²)).

    Returns ``inf`` for identical images. ``x`` is not clipped.
    """
    from skimage.metrics import peak_signal_noise_ratio

    a, b = _pair(ref, x)
    if np.array_equal(a, b):
        return float("inf")
    return float(peak_signal_noise_ratio(a, b, data_range=float(data_range)))


def ssim(ref: Any, x: Any, data_range: float = 1.0) -> float:
    """Structural similarity (Wang et al. 2004) via ``skimage.metrics.structural_similarity``;
    colour images (H, W, C) use ``channel_axis=-1`` (mean over channels)."""
    from skimage.metrics import structural_similarity

    a, b = _pair(ref, x)
    if min(a.shape[:2]) < 7:
        raise ValueError(f"SSIM needs images of at least 7x7 pixels, got {a.shape[:2]}")
    kw = {"channel_axis": -1} if a.ndim == 3 else {}
    return float(structural_similarity(a, b, data_range=float(data_range), **kw))
