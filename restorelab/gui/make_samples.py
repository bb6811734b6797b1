"""Regenerate ``resources/samples/`` from ``skimage.data`` (no Qt needed).

``python -m restorelab.gui.make_samples [OUT_DIR]``. astronaut (NASA, public domain),
coffee (CC0) and camera (CC0), each at most 512 px, and ``astronaut_noisy.png``: the
astronaut plus white Gaussian noise of σ = 25/255, seed 2026.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def _fit(img: np.ndarray, m: int = 512) -> np.ndarray:
    from skimage.transform import resize

    h, w = img.shape[:2]
    s = min(1.0, m / max(h, w))
    if s < 1:
        out = resize(img, (round(h * s), round(w * s)), anti_aliasing=True, preserve_range=True)
        img = out.round().astype(np.uint8)
    return img


def make_samples(out: Path) -> list[Path]:
    """Write the sample images into ``out`` and return their paths."""
    from skimage import data, io

    out.mkdir(parents=True, exist_ok=True)
    ast = _fit(data.astronaut())
    rng = np.random.default_rng(2026)
    noisy = np.clip(ast.astype(np.float64) + rng.normal(0, 25, ast.shape), 0, 255).round().astype(np.uint8)
    files = {
        "astronaut.png": ast,
        "astronaut_noisy.png": noisy,
        "coffee.png": _fit(data.coffee()),
        "camera.png": _fit(data.camera()),
    }
    paths = []
    for name, img in files.items():
        io.imsave(out / name, img, check_contrast=False)
        paths.append(out / name)
    return paths


if __name__ == "__main__":  # pragma: no cover
    from restorelab.resources import samples_dir

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else samples_dir()
    for p in make_samples(target):
        print(p)
