"""Image and mask conversion shared by the Poisson edits.

Images are float32 (H, W) or (H, W, C) in [0, 1], converted by the one image policy of
:mod:`restorelab.image` (uint8, uint16 and float accepted; bool refused here: an image, not a
mask, is expected). Values outside [0, 1] in float inputs are kept (never clipped in the
solve); only :func:`from_float` to an integer dtype clips, and it rounds to the nearest level.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from restorelab.image import as_float_image, from_float_image

__all__ = ["check_image", "to_float", "from_float", "as_mask", "split_alpha", "merge_alpha"]


def check_image(img: Any, name: str = "image") -> np.ndarray:
    """``img`` as an ndarray after the type and shape checks of :func:`to_float` (no copy, no
    conversion, no scan of the values). Raises ``TypeError`` / ``ValueError``."""
    if not isinstance(img, np.ndarray):
        if isinstance(img, (list, tuple)):
            img = np.asarray(img)
        else:
            raise TypeError(f"{name} must be a numpy array, got {type(img).__name__}")
    dt = img.dtype
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 2, 3, 4)):
        raise ValueError(f"{name} must have shape (H, W) or (H, W, C) with C in 1..4, got {img.shape}")
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"{name} is empty (shape {img.shape})")
    if dt not in (np.uint8, np.uint16) and not np.issubdtype(dt, np.floating):
        raise TypeError(f"{name} has unsupported dtype {dt}; use uint8, uint16 or float")
    return img


def to_float(img: Any, name: str = "image") -> tuple[np.ndarray, np.dtype]:
    """Convert ``img`` to float32 on the [0, 1] scale by the one image policy
    (:func:`restorelab.image.as_float_image`: uint8 → x/255, uint16 → x/65535, float as is).

    Returns ``(image, original_dtype)``; the input is never modified (a new array is returned).
    A gray + alpha image (C = 2) is converted channel by channel. Raises ``TypeError`` for
    other dtypes and ``ValueError`` for bad shapes or non-finite values.
    """
    img = check_image(img, name)
    if img.ndim == 3 and img.shape[2] == 2:
        out = np.stack([as_float_image(img[:, :, k], name=name, copy=True) for k in range(2)], axis=2)
    else:
        out = as_float_image(img, name=name, copy=True)
    return out, img.dtype


def from_float(img: np.ndarray, dtype: Any) -> np.ndarray:
    """Convert a float image in [0, 1] back to ``dtype`` (:func:`restorelab.image.from_float_image`:
    integers are clipped and rounded to the nearest level, floats are returned unclipped)."""
    dt = np.dtype(dtype)
    if dt not in (np.uint8, np.uint16) and dt.kind != "f":
        raise TypeError(f"unsupported output dtype {dt}")
    return from_float_image(img, dt)


def as_mask(mask: Any, shape: tuple[int, int], name: str = "mask") -> np.ndarray:
    """A boolean (H, W) copy of ``mask``: non-zero (white) = selected. A (H, W, C) mask counts a
    pixel as selected when any channel is non-zero. Raises ``ValueError`` on a shape mismatch,
    NaN or an empty selection."""
    if mask is None:
        raise ValueError(f"{name} is required")
    m = np.asarray(mask)
    if m.ndim == 3:
        m = np.any(m != 0, axis=2) if m.dtype != bool else m.any(axis=2)
    if m.ndim != 2:
        raise ValueError(f"{name} must be 2-D (H, W), got shape {np.asarray(mask).shape}")
    if m.shape != tuple(shape):
        raise ValueError(f"{name} has shape {m.shape}, expected {tuple(shape)}")
    if m.dtype != bool:
        if np.issubdtype(m.dtype, np.floating) and not np.isfinite(m).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        m = m != 0
    else:
        m = m.copy()
    if not m.any():
        raise ValueError(f"{name} is empty: select at least one pixel (non-zero = selected)")
    return m


def split_alpha(img: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(colour, alpha): a 2- or 4-channel image loses its last channel to ``alpha``."""
    if img.ndim == 3 and img.shape[2] in (2, 4):
        return img[:, :, :-1], img[:, :, -1]
    return img, None


def merge_alpha(color: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Inverse of :func:`split_alpha`."""
    if alpha is None:
        return color
    if color.ndim == 2:
        color = color[:, :, None]
    return np.concatenate([color, alpha[:, :, None].astype(color.dtype)], axis=2)
