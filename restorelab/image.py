"""The one image policy of the core: any accepted input to float32 in [0, 1], and back.

Every entry point of restorelab (denoisers, Poisson editing, the prior, ``io``, the
workspace the GUI edits) turns its input into the working representation with
:func:`as_float_image`, so ``denoise.get("tv")(uint8_image, 25/255)`` and
``edit.seamless_clone(uint8...)`` see the same numbers. The rules follow scikit-image's
``img_as_float`` where it is unambiguous and refuse where it is not:

==============  =====================================================================
input dtype     working values
==============  =====================================================================
``uint8``       ``x / 255``
``uint16``      ``x / 65535``
``bool``        ``0.0`` / ``1.0``
float16/32/64   cast to float32, *not* clipped (float pipelines may carry values
                slightly outside [0, 1], e.g. an unclipped noisy image)
anything else   ``TypeError`` (signed or 32/64-bit integers have no agreed full scale)
==============  =====================================================================

Shapes: ``(H, W)`` gray; ``(H, W, 1)`` becomes ``(H, W)``; ``(H, W, 3)`` RGB;
``(H, W, 4)`` RGBA, whose alpha is kept, dropped or refused (``alpha=``). A torch tensor
``(C, H, W)`` or ``(H, W)`` is accepted and converted to the same layout. Empty images and
NaN/inf values raise ``ValueError``. The input is never modified.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

import numpy as np

__all__ = ["as_float_image", "from_float_image", "image_dtype", "check_finite"]

AlphaPolicy = Literal["keep", "drop", "error"]

_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def image_dtype(image: Any) -> np.dtype:
    """The dtype :func:`from_float_image` should return to for a result computed from ``image``."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(image, torch.Tensor):
        return np.dtype(np.float32)
    return np.asarray(image).dtype


def _to_numpy(image: Any, name: str) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    torch = sys.modules.get("torch")  # a tensor implies torch is already imported
    if torch is not None and isinstance(image, torch.Tensor):
        if image.ndim not in (2, 3):
            raise ValueError(f"{name}: expected a (C,H,W) or (H,W) tensor, got shape {tuple(image.shape)}")
        t = image.detach().float().cpu()
        return (t if t.ndim == 2 else t.permute(1, 2, 0)).numpy()
    if isinstance(image, (list, tuple)):
        return np.asarray(image)
    raise TypeError(f"{name}: expected a numpy array or torch tensor image, got {type(image).__name__}")


def check_finite(a: np.ndarray, name: str = "image") -> None:
    """Raise ``ValueError`` if ``a`` holds NaN or ±inf (min/max is one pass, no temporary)."""
    if a.size and a.dtype.kind == "f":
        lo, hi = a.min(), a.max()
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"{name} contains NaN or infinite values")


def as_float_image(
    image: Any,
    *,
    name: str = "image",
    alpha: AlphaPolicy = "keep",
    copy: bool = False,
) -> np.ndarray:
    """Convert ``image`` to float32 ``(H, W)`` or ``(H, W, C)`` on the [0, 1] scale.

    Parameters
    ----------
    image : array_like or torch.Tensor
        uint8, uint16, bool or float; ``(H, W)``, ``(H, W, C)`` with C in 1, 3, 4, or a
        tensor ``(C, H, W)``.
    name : str
        How error messages refer to the input.
    alpha : {"keep", "drop", "error"}
        What to do with a 4th (alpha) channel.
    copy : bool
        Always return a new array (otherwise a float32 C-contiguous input is returned as is).

    Returns
    -------
    numpy.ndarray
        float32, C-contiguous.

    Raises
    ------
    TypeError
        Unsupported dtype or object.
    ValueError
        Bad shape, empty image, NaN/inf, or alpha refused.
    """
    a = _to_numpy(image, name)
    dt = a.dtype
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ValueError(f"{name}: expected an (H,W) or (H,W,C) image with C in 1, 3, 4; got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name}: empty image of shape {a.shape}")
    if a.ndim == 3 and a.shape[2] == 4:
        if alpha == "drop":
            a = a[:, :, :3]
        elif alpha == "error":
            raise ValueError(f"{name}: an alpha channel is not supported here; give an RGB or gray image")
    if dt in _SCALE:
        out = a.astype(np.float32)
        out *= np.float32(1.0 / _SCALE[dt])
        return out
    if dt == np.bool_:
        return a.astype(np.float32)
    if dt.kind == "f":
        if copy:
            out = np.array(a, dtype=np.float32, order="C", copy=True)
        else:
            out = np.ascontiguousarray(a, np.float32)
        check_finite(out, name)
        return out
    raise TypeError(
        f"{name}: unsupported dtype {dt}; give uint8, uint16, bool or float (values in [0, 1])"
    )


def from_float_image(image: np.ndarray, dtype: Any) -> np.ndarray:
    """Return a working float image in ``dtype``: integers are clipped to [0, 1] and rounded
    to the nearest level (``rint(x·255)``, ``rint(x·65535)``); floats are cast, unclipped;
    ``bool`` is ``x ≥ 0.5``."""
    dt = np.dtype(dtype)
    a = np.asarray(image)
    if dt in _SCALE:
        return np.rint(np.clip(a, 0.0, 1.0) * _SCALE[dt]).astype(dt)
    if dt == np.bool_:
        return a >= 0.5
    if dt.kind == "f":
        return a.astype(dt, copy=True)
    raise TypeError(f"unsupported output dtype {dt}")
