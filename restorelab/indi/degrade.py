"""Synthetic degradations for InDI training and benchmarks (Delbracio & Milanfar, TMLR 2023, §5).

Every degradation maps a clean float image (H, W[, C]) in [0, 1] to a degraded one of the
same size, so the InDI path x_t = (1 − t) x + t y stays in one space:

- ``blur``: convolution (reflected borders) with a random kernel, an anisotropic Gaussian
  (σ along each axis in [0.6, 3] px, any orientation) or a motion blur (a random smooth
  camera path of 4–16 px rasterised onto the grid), half of each.
- ``sr4``: 4× down-sampling with PIL's antialiased bicubic filter, then bicubic
  up-sampling back to the original size (the usual "upscaled thumbnail" input).
- ``jpeg``: a real JPEG round trip through PIL's libjpeg encoder at quality 10–40 (4:2:0
  chroma sub-sampling, PIL's default), on the 8-bit quantised image.

The random draws come from a ``numpy.random.Generator`` only, so a seed fixes the output.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

__all__ = [
    "DEGRADATIONS",
    "KERNEL_SIZE",
    "JPEG_QUALITY",
    "gaussian_kernel",
    "motion_kernel",
    "random_kernel",
    "blur",
    "downsample4",
    "upsample_to",
    "sr4",
    "jpeg",
    "draw",
    "apply",
    "degrade",
    "margin",
]

DEGRADATIONS = ("blur", "sr4", "jpeg")
#: side of every blur kernel (odd); the largest blur reaches 10 px from the centre
KERNEL_SIZE = 21
#: the JPEG quality range drawn from (inclusive)
JPEG_QUALITY = (10, 40)
SIGMA_RANGE = (0.6, 3.0)
MOTION_LENGTH = (4.0, 16.0)


def gaussian_kernel(sigma_x: float, sigma_y: float, theta: float, size: int = KERNEL_SIZE) -> np.ndarray:
    """Anisotropic Gaussian exp(−½ uᵀ Σ⁻¹ u), Σ = R diag(σx², σy²) Rᵀ, normalised to sum 1."""
    r = size // 2
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    c, s = math.cos(theta), math.sin(theta)
    u = c * xx + s * yy
    v = -s * xx + c * yy
    k = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return (k / k.sum()).astype(np.float32)


def motion_kernel(rng: np.random.Generator, length: float, size: int = KERNEL_SIZE) -> np.ndarray:
    """A camera-shake kernel: a random path of total ``length`` px with a slowly turning
    direction (a few smooth turns, like a hand-held exposure), rasterised by bilinear
    splatting and normalised to sum 1, centred on its mean position."""
    n = 64
    heading = rng.uniform(0, 2 * math.pi)
    turn = np.cumsum(rng.normal(0.0, 0.12, n))
    ang = heading + turn
    step = length / n
    pts = np.cumsum(np.stack([np.cos(ang), np.sin(ang)], 1) * step, axis=0)
    pts -= pts.mean(axis=0)
    r = size // 2
    pts = np.clip(pts, -r + 1e-3, r - 1e-3) + r
    k = np.zeros((size, size), np.float64)
    for x, y in pts:
        i0, j0 = int(math.floor(y)), int(math.floor(x))
        fy, fx = y - i0, x - j0
        for di, wy in ((0, 1 - fy), (1, fy)):
            for dj, wx in ((0, 1 - fx), (1, fx)):
                if 0 <= i0 + di < size and 0 <= j0 + dj < size:
                    k[i0 + di, j0 + dj] += wy * wx
    return (k / k.sum()).astype(np.float32)


def random_kernel(rng: np.random.Generator) -> np.ndarray:
    """Gaussian or motion blur kernel (probability ½ each), see the module docstring."""
    if rng.random() < 0.5:
        sx, sy = rng.uniform(*SIGMA_RANGE, size=2)
        return gaussian_kernel(float(sx), float(sy), float(rng.uniform(0, math.pi)))
    return motion_kernel(rng, float(rng.uniform(*MOTION_LENGTH)))


def blur(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolution k * x with reflected borders (``cv2.filter2D`` correlates, so the kernel is flipped)."""
    import cv2

    a = np.ascontiguousarray(x, np.float32)
    out = cv2.filter2D(a, -1, np.ascontiguousarray(kernel[::-1, ::-1]), borderType=cv2.BORDER_REFLECT)
    return out.reshape(a.shape)


def _resize(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """PIL bicubic resize of a float image, channel by channel (mode ``F``, no quantisation).

    PIL's bicubic widens its kernel by the scale factor when reducing (antialiasing), the
    resampling photo software applies.
    """
    from PIL import Image

    a = np.asarray(x, np.float32)
    chans = [a] if a.ndim == 2 else [a[:, :, c] for c in range(a.shape[2])]
    out = [np.asarray(Image.fromarray(np.ascontiguousarray(c), mode="F").resize((w, h), Image.BICUBIC))
           for c in chans]
    return out[0] if a.ndim == 2 else np.stack(out, axis=2)


def downsample4(x: np.ndarray) -> np.ndarray:
    """The 4× smaller image (⌈H/4⌉ × ⌈W/4⌉), PIL bicubic with antialiasing."""
    h, w = x.shape[:2]
    return _resize(x, max(1, -(-h // 4)), max(1, -(-w // 4)))


def upsample_to(low: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bicubic up-sampling of ``low`` to h × w (PIL)."""
    return _resize(low, h, w)


def sr4(x: np.ndarray) -> np.ndarray:
    """4× bicubic down-sampling followed by bicubic up-sampling to the original size."""
    h, w = x.shape[:2]
    return upsample_to(downsample4(x), h, w)


def jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    """Encode the 8-bit image as JPEG at ``quality`` with PIL (libjpeg) and decode it back."""
    from PIL import Image

    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be between 1 and 100, got {quality}")
    a = np.rint(np.clip(np.asarray(x, np.float32), 0, 1) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("L" if a.ndim == 2 else "RGB"), dtype=np.float32) / 255.0
    return out


def draw(kind: str, rng: np.random.Generator) -> dict[str, Any]:
    """The random parameters of one degradation: ``{"kernel": k}``, ``{}`` or ``{"quality": q}``."""
    if kind == "blur":
        return {"kernel": random_kernel(rng)}
    if kind == "sr4":
        return {}
    if kind == "jpeg":
        return {"quality": int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))}
    raise ValueError(f"unknown degradation {kind!r}; expected one of {', '.join(DEGRADATIONS)}")


def apply(kind: str, x: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """Degrade ``x`` with the parameters ``info`` drawn by :func:`draw`."""
    if kind == "blur":
        return blur(x, info["kernel"])
    if kind == "sr4":
        return sr4(x)
    if kind == "jpeg":
        return jpeg(x, info["quality"])
    raise ValueError(f"unknown degradation {kind!r}; expected one of {', '.join(DEGRADATIONS)}")


def degrade(x: np.ndarray, kind: str, rng: np.random.Generator | int) -> tuple[np.ndarray, dict[str, Any]]:
    """A degraded copy of ``x`` and its random parameters (a seed or a generator)."""
    g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(int(rng))
    info = draw(kind, g)
    return apply(kind, x, info).astype(np.float32), info


def margin(kind: str) -> int:
    """Context (px) to cut around a training patch so its degradation sees no patch border."""
    return KERNEL_SIZE // 2 + 1 if kind == "blur" else 0
