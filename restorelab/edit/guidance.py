"""Guidance fields of the Poisson edits, as edge fields ``(vx, vy)``.

``vx`` (H, W−1, C) holds the wanted ``f[i, j+1] − f[i, j]``, ``vy`` (H−1, W, C) the wanted
``f[i+1, j] − f[i, j]`` (Pérez, Gangnet & Blake 2003; Di Martino et al., IPOL 2016, §2).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CLONE_MODES",
    "edge_gradient",
    "pixel_gradient",
    "clone_guidance",
    "fattal_guidance",
]

#: "replace" is the IPOL paper's name of importing the source gradients (= "import")
CLONE_MODES = ("import", "mixed", "average", "paste", "replace")


def edge_gradient(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences on the grid edges: ``(a[:, 1:] − a[:, :-1], a[1:] − a[:-1])``."""
    return a[:, 1:] - a[:, :-1], a[1:] - a[:-1]


def pixel_gradient(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward-difference gradient per pixel (zero past the last column / row), the pixel
    (i, j) owning its right and lower edges."""
    gx = np.zeros_like(a)
    gy = np.zeros_like(a)
    gx[:, :-1] = a[:, 1:] - a[:, :-1]
    gy[:-1] = a[1:] - a[:-1]
    return gx, gy


def clone_guidance(src: np.ndarray, dst: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Guidance for seamless cloning of ``src`` into ``dst`` (same shape and float dtype; the
    clone computes it in float32).

    * ``import`` / ``replace``: v = ∇g (the source's gradient);
    * ``mixed``: per pixel and channel the larger-magnitude gradient vector of source and
      destination, v = ∇f* if |∇f*| > |∇g| else ∇g (IPOL "maximum", Pérez eq. 12–13 with the
      2-vector norm instead of OpenCV's |gx − gy|);
    * ``average``: v = (∇g + ∇f*) / 2.
    """
    if mode in ("import", "replace"):
        return edge_gradient(src)
    if mode == "average":
        sx, sy = edge_gradient(src)
        dx, dy = edge_gradient(dst)
        return 0.5 * (sx + dx), 0.5 * (sy + dy)
    if mode == "mixed":
        sx, sy = pixel_gradient(src)
        dx, dy = pixel_gradient(dst)
        use_dst = dx * dx + dy * dy > sx * sx + sy * sy
        gx = np.where(use_dst, dx, sx)
        gy = np.where(use_dst, dy, sy)
        return gx[:, :-1], gy[:-1]
    raise ValueError(f"unknown clone mode {mode!r}; use one of {', '.join(CLONE_MODES)}")


def fattal_guidance(
    gx: np.ndarray, gy: np.ndarray, norm: np.ndarray, alpha_abs: np.ndarray, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Local illumination change (Fattal, Lischinski & Werman 2002 as used by Pérez et al. and
    IPOL §2.4): v = α^β |∇f|^{−β} ∇f per pixel and channel, from the pixel gradient ``gx, gy``
    and its norm, with ``alpha_abs`` (C,) the absolute α (zero-gradient pixels get v = 0)."""
    dt = gx.dtype
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scale = np.power(np.maximum(norm, np.asarray(1e-12, dt)), np.asarray(-beta, dt))
        scale *= np.power(np.asarray(alpha_abs, dt), np.asarray(beta, dt))
    scale[norm <= 1e-12] = 0
    return (gx * scale)[:, :-1], (gy * scale)[:-1]
