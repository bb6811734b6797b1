"""Make the InDI documentation figures (run from the repository root).

    PYTHONPATH=. .venv/bin/python docs/make_indi_figures.py

* ``docs/indi_examples.png``: one row per degradation (blur, sr4, jpeg) of a 96×96 crop of
  scikit-image's astronaut (bundled with scikit-image): clean | degraded (seed 0) |
  InDI N = 1 | N = 5 | N = 20 (shipped models, seed 0), each shown at 2× (nearest).
* ``docs/indi_trajectory.png``: the frames x_t of the N = 5 JPEG restoration, t = 1 → 0.

It prints the PSNR of every panel, the numbers quoted in docs/indi.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DOCS = Path(__file__).resolve().parent


def _tile(a: np.ndarray) -> np.ndarray:
    a = np.clip(a, 0, 1)
    return np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)


def main() -> None:
    from skimage import data

    from restorelab.indi import degrade
    from restorelab.indi.restore import restore
    from restorelab.io import save_image
    from restorelab.metrics import psnr

    x = (data.astronaut()[30:126, 190:286] / 255.0).astype(np.float32)
    gap = np.ones((192, 6, 3), np.float32)
    rows = []
    for deg in degrade.DEGRADATIONS:
        y, _ = degrade.degrade(x, deg, 0)
        panels, line = [x, y], [f"{deg}: degraded {psnr(x, y):.2f} dB"]
        for n in (1, 5, 20):
            r = restore(y, deg, n, seed=0, device="cpu").image
            panels.append(r)
            line.append(f"N={n} {psnr(x, r):.2f} dB")
        print(", ".join(line))
        row = []
        for p in panels:
            row += [_tile(p), gap]
        rows += [np.concatenate(row[:-1], axis=1), np.ones((6, row[0].shape[1] * 5 + 24, 3), np.float32)]
    save_image(DOCS / "indi_examples.png", np.concatenate(rows[:-1], axis=0), overwrite=True, bit_depth=8)
    y, _ = degrade.degrade(x, "jpeg", 0)
    res = restore(y, "jpeg", 5, seed=0, device="cpu")
    strip = []
    for f in res.trajectory:
        strip += [_tile(f), gap]
    save_image(DOCS / "indi_trajectory.png", np.concatenate(strip[:-1], axis=1), overwrite=True, bit_depth=8)
    print("trajectory t =", ", ".join(f"{t:.1f}" for t in res.times))
    print("wrote docs/indi_examples.png and docs/indi_trajectory.png")


if __name__ == "__main__":
    main()
