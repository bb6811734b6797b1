"""Display conversion shared by the canvas and by jobs that prepare what it will show."""

from __future__ import annotations

import numpy as np


def to_display(img: np.ndarray) -> np.ndarray:
    """uint8 view of a float image in [0, 1] (display only; RGBA drops alpha)."""
    a = img[..., :3] if img.ndim == 3 and img.shape[2] == 4 else img
    t = np.clip(a, 0.0, 1.0, dtype=np.float32)
    t *= 255.0
    t += 0.5
    return t.astype(np.uint8)
