"""Additive white Gaussian noise with an explicit seed.

The degradation model of the seed document: ``y = x + σ n`` with ``n ~ N(0, I)``; σ is on
the [0, 1] intensity scale (σ = 25/255 for "σ = 25" as users see it). The result is NOT
clipped, so that the noise stays Gaussian and zero-mean (clipping would bias dark and
bright regions and change the effective σ).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["add_gaussian_noise", "make_rng"]


def make_rng(seed: None | int | np.random.Generator = None) -> np.random.Generator:
    """A numpy Generator from ``None`` (fresh entropy), an int seed or a Generator (used as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be None, an int or a numpy.random.Generator, got {type(seed).__name__}")
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.default_rng(int(seed))


def add_gaussian_noise(x: Any, sigma: float, seed: None | int | np.random.Generator = None) -> np.ndarray:
    """``y = x + σ·n``, ``n ~ N(0, I)`` i.i.d. per pixel and channel; float32, unclipped.

    ``x`` is a float image (H, W) or (H, W, C) on the [0, 1] scale (not modified); ``sigma``
    ≥ 0 on the same scale; ``seed`` makes the draw reproducible (the same int gives the same
    noise; a Generator is advanced). An alpha channel (C = 4) is left noise-free.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"expected a numpy array image, got {type(x).__name__}")
    if x.dtype == bool or not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"expected a numeric image, got dtype {x.dtype}")
    if x.ndim not in (2, 3) or x.size == 0:
        raise ValueError(f"expected a non-empty (H, W) or (H, W, C) image, got shape {x.shape}")
    try:
        s = float(sigma)
    except (TypeError, ValueError):
        raise TypeError(f"sigma must be a number, got {sigma!r}") from None
    if not np.isfinite(s) or s < 0:
        raise ValueError(f"sigma must be finite and >= 0, got {sigma!r}")
    xf = np.asarray(x, dtype=np.float32)
    if not np.isfinite(xf).all():
        raise ValueError("image contains NaN or infinite values")
    rng = make_rng(seed)
    noise = rng.standard_normal(xf.shape, dtype=np.float32) * np.float32(s)
    if xf.ndim == 3 and xf.shape[2] == 4:
        noise[:, :, 3] = 0
    return (xf + noise).astype(np.float32, copy=False)
