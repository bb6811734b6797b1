"""Make the documentation figures of the prior package (run from the repository root).

    .venv/bin/python docs/make_figures.py manifold decomposition digits inverse

* ``manifold``: docs/manifold_demo.png — Kadkhodaie & Simoncelli (2021) Fig. 10 from
  ``restorelab.prior.manifold.manifold_demo`` (needs matplotlib, a docs-only dependency).
* ``decomposition``: docs/decomposition.png — layers of ``restorelab.prior.decompose``
  (TV denoiser) and a detail-boosted recomposition of scikit-image's camera.
* ``digits``: docs/digits_samples.png — Algorithm 1 with the shipped digits model
  (``resources/models/bfcnn_digits.safetensors``), 16 samples of 28×28, seed 0.
* ``inverse``: docs/inverse_examples.png — Algorithm 2 with the shipped gray model on a
  64×64 crop of scikit-image's camera for each task, beside the classical answer.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

DOCS = Path(__file__).resolve().parent


def manifold() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from restorelab.prior.manifold import manifold_demo

    d = manifold_demo(sigma=(0.3, 0.15, 0.05), n_points=50, seed=0, grid=200)
    ext = [d["grid_x"][0], d["grid_x"][-1], d["grid_y"][0], d["grid_y"][-1]]
    fig, axes = plt.subplots(1, 5, figsize=(20, 4.3))
    for j, s in enumerate(d["sigmas"]):
        ax = axes[j]
        ax.imshow(d["density"][j], extent=ext, origin="lower", cmap="gray_r")
        ax.plot(*d["curve"].T, color="tab:green", lw=2)
        for y, x in zip(d["noisy"][j], d["ls"][j], strict=True):
            ax.plot([y[0], x[0]], [y[1], x[1]], color="tab:red", lw=0.8)
        ax.plot(*d["noisy"][j].T, ".", color="tab:red", ms=4)
        ax.set_title(f"σ = {s:g}: p(y), least-squares x̂(y)")
    for k, (key, title, color) in enumerate(
        [("traj_alg1", "Algorithm 1 (h₀ = 0.05, β = 1)", "tab:blue"),
         ("traj_alg2", "Algorithm 2, x-coordinate measured", "tab:purple")]
    ):
        ax = axes[3 + k]
        ax.imshow(d["density"][0], extent=ext, origin="lower", cmap="gray_r", alpha=0.4)
        ax.plot(*d["curve"].T, color="tab:green", lw=2)
        for tr, n in zip(d[key], d[key + "_len"], strict=True):
            ax.plot(*tr[:n].T, color=color, lw=0.8)
        ax.plot(*d["noisy"][0].T, ".", color="tab:red", ms=4)
        ends = d["end_alg1" if k == 0 else "end_alg2"]
        ax.plot(*ends.T, "o", color=color, ms=3)
        dist = d["dist_alg1" if k == 0 else "dist_alg2"]
        ax.set_title(f"{title}\nmax end distance {dist.max():.3f}")
    for ax in axes:
        ax.set_xlim(ext[:2])
        ax.set_ylim(ext[2:])
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(DOCS / "manifold_demo.png", dpi=80)
    print(f"docs/manifold_demo.png: Alg. 1 max end distance {d['dist_alg1'].max():.4f}, "
          f"Alg. 2 {d['dist_alg2'].max():.4f} ({np.mean(d['dist_alg2'] < 0.05) * 100:.0f} % within 0.05)")


def decomposition() -> None:
    from skimage import data

    from restorelab.io import save_image
    from restorelab.prior import decompose

    x = (data.camera()[60:316, 120:376] / 255.0).astype(np.float32)
    dec = decompose(x, "tv", levels=4, sigma=25 / 255)
    boosted = dec.recompose([2.0, 1.6, 1.3, 1.0])
    tiles = [x, dec.base] + [0.5 + 2 * r for r in dec.residuals] + [boosted]
    row = np.concatenate([np.clip(t, 0, 1) for t in tiles], axis=1)
    save_image(DOCS / "decomposition.png", row, overwrite=True)
    print(f"docs/decomposition.png: input | base f⁴(x) | r_0..r_3 (0.5 + 2r) | gains 2,1.6,1.3,1; "
          f"unit-gain error {np.abs(dec.recompose() - x).max():.2e}")


def digits() -> None:
    from restorelab.cli.prior_cmd import tile
    from restorelab.io import save_image
    from restorelab.jobs import run_job
    from restorelab.prior import sample_job

    t0 = time.perf_counter()
    import os

    model = os.environ.get("DIGITS_MODEL", "digits")  # a path to try a training checkpoint
    panels = []
    for beta in (0.5, 0.3):  # the paper's default for synthesis, and more injected noise kept
        res = run_job(sample_job(_bfcnn(model), shape=(28, 28), seed=0, samples=16, beta=beta, device="cpu"))
        panels.append(tile([np.clip(s, 0, 1) for s in res.samples]))
        print(f"β = {beta}: {res.message}; {res.iterations} iterations")
    gap = np.ones((panels[0].shape[0], 6), np.float32)
    grid = np.concatenate([panels[0], gap, panels[1]], axis=1)
    save_image(DOCS / "digits_samples.png", grid, overwrite=True)
    print(f"docs/digits_samples.png (model {model}): left β = 0.5, right β = 0.3; "
          f"{time.perf_counter() - t0:.1f} s for 2 × 16 samples")


def _bfcnn(model: str):
    from restorelab import denoise

    return denoise.get("bfcnn", model=model, device="cpu")


def inverse() -> None:
    from skimage import data

    from restorelab.bench.inverse import TASK_SETTINGS, classical
    from restorelab.io import save_image
    from restorelab.jobs import run_job
    from restorelab.metrics import psnr
    from restorelab.prior import inverse_job, operators

    x = (data.camera()[100:164, 200:264] / 255.0).astype(np.float32)
    den = _bfcnn("gray")
    rows = []
    for task, kw in TASK_SETTINGS.items():
        op = operators.make(task, x.shape, **kw)
        res = run_job(inverse_job(den, op, x, samples=4, seed=0, device="cpu"))
        c = np.clip(classical(task, op, x), 0, 1)
        deg = np.clip(op.proj(x) + 0.5 * (1 - op.proj(np.ones_like(x))), 0, 1)
        rows.append(np.concatenate([deg, c, np.clip(res.samples[0], 0, 1), np.clip(res.mean, 0, 1),
                                    np.clip(res.std * 4, 0, 1), x], axis=1))
        one = psnr(x, np.clip(res.samples[0], 0, 1))
        print(f"{task}: classical {psnr(x, c):.2f} dB, 1 sample {one:.2f} dB, "
              f"mean of 4 {psnr(x, np.clip(res.mean, 0, 1)):.2f} dB, {res.iterations} it, {res.message}")
    save_image(DOCS / "inverse_examples.png", np.concatenate(rows, axis=0), overwrite=True)
    print("docs/inverse_examples.png: measured | classical | 1 sample | mean of 4 | 4×std | original")


if __name__ == "__main__":
    which = sys.argv[1:] or ["manifold", "decomposition"]
    for name in which:
        {"manifold": manifold, "decomposition": decomposition, "digits": digits, "inverse": inverse}[name]()
