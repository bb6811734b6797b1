"""``restorelab analyze`` outputs and refusals; the generalization experiment's data split and distances."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from restorelab.analysis.generalization import converged_samples, nearest_rmse, split_subsets
from restorelab.cli import main
from restorelab.io import load_image, save_image


@pytest.fixture
def image_path(tmp_path, camera_small):
    p = tmp_path / "cam.png"
    save_image(p, camera_small)
    return p


def test_analyze_writes_spectrum_basis_filters_and_report(tmp_path, image_path):
    out = tmp_path / "out"
    rc = main(
        [
            "analyze",
            str(image_path),
            "--method",
            "tikhonov",
            "--sigma",
            "25",
            "--crop",
            "10,20,12",
            "--out",
            str(out),
            "--pixels",
            "15,25;12,30",
            "-k",
            "4",
        ]
    )
    assert rc == 0
    with open(out / "spectrum.csv") as f:
        rows = list(csv.DictReader(f))
    ev = np.array([float(r["eigenvalue"]) for r in rows])
    assert len(ev) == 144
    # Tikhonov smoothing: J = (I + λL)⁻¹, eigenvalues in (0, 1], the constant image kept (λ = 1)
    assert abs(ev[0] - 1.0) < 1e-6 and ev[-1] > 0 and np.all(np.diff(ev) <= 1e-12)
    rep = json.loads((out / "report.json").read_text())
    assert len(rep) == 1 and rep[0]["denoiser"] == "tikhonov" and rep[0]["method"] == "exact-linear"
    assert rep[0]["flags"] == [] and abs(rep[0]["trace"] - ev.sum()) < 1e-6
    assert "| tikhonov | exact-linear |" in (out / "report.md").read_text()
    basis = load_image(out / "basis.png")
    filters = load_image(out / "filters.png")
    assert basis.shape[1] > 4 * 12 and filters.shape[1] > 2 * 12  # 4 tiles, 2 tiles side by side
    assert load_image(out / "spectrum.png").ndim == 3


def test_analyze_methods_table_has_one_row_per_method(tmp_path, image_path):
    out = tmp_path / "out"
    rc = main(
        [
            "analyze",
            str(image_path),
            "--methods",
            "heat,gaussian",
            "--sigma",
            "25",
            "--crop",
            "0,0,8",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    rep = json.loads((out / "report.json").read_text())
    assert [r["denoiser"] for r in rep] == ["heat", "gaussian"]
    assert not (out / "spectrum.csv").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--crop", "120,0,16"], "outside"),
        (["--crop", "0,0,65"], "limit"),
        (["--crop", "0,0,16", "--pixels", "40,40"], "outside the crop"),
        (["--crop", "0,0,16", "--sigma", "0"], "sigma"),
    ],
)
def test_analyze_refuses_bad_input_in_one_line(tmp_path, image_path, capsys, args, message):
    base = ["analyze", str(image_path), "--method", "gaussian", "--out", str(tmp_path / "o")]
    if "--sigma" not in args:
        base += ["--sigma", "25"]
    assert main(base + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "o" / "report.json").exists()


def test_split_subsets_are_disjoint_and_too_large_n_is_refused():
    a, b, v = split_subsets(100, 30, 10, seed=0)
    assert len(a) == len(b) == 30 and len(v) == 10
    assert not (set(a) & set(b)) and not (set(a) & set(v)) and not (set(b) & set(v))
    a2, _, v2 = split_subsets(100, 5, 10, seed=0)
    np.testing.assert_array_equal(v, v2)  # one validation set for every N
    with pytest.raises(ValueError, match="largest N is 45"):
        split_subsets(100, 46, 10, seed=0)


def test_nearest_rmse_matches_brute_force(rng):
    train = rng.random((20, 6, 6))
    samples = np.stack([train[7] + 0.01, rng.random((6, 6))])
    d, idx = nearest_rmse(samples, train)
    brute = np.sqrt(((samples[:, None] - train[None]) ** 2).mean(axis=(2, 3)))
    np.testing.assert_allclose(d, brute.min(axis=1), atol=1e-12)
    assert idx[0] == 7 and abs(d[0] - 0.01) < 1e-12


def test_converged_samples_are_those_whose_sigma_reached_sigma_L():
    nan = np.nan
    log = np.array([  # iterations x 3 samples; NaN after a sample stopped
        [0.9, 0.9, 0.9],
        [0.2, 0.05, 0.3],
        [0.009, 0.04, 0.6],  # sample 0 reaches σ_L = 0.01 and stops
        [nan, 0.03, 2.5],  # sample 2 diverges
        [nan, 0.03, nan],  # sample 1 stalls above σ_L
    ])
    assert converged_samples(log, 0.01).tolist() == [True, False, False]
    assert converged_samples(log, 0.03).tolist() == [True, True, False]
    assert converged_samples(np.zeros((0, 4)), 0.01).tolist() == [False] * 4


@pytest.mark.slow
def test_generalization_job_end_to_end_on_synthetic_digits(tmp_path):
    from restorelab.analysis.generalization import GeneralizationConfig, generalization_job
    from restorelab.jobs import run_job

    g = np.random.default_rng(0)
    digits = np.zeros((12, 28, 28), np.uint8)
    for k in range(12):  # bars at distinct rows: every digit is different
        digits[k, 2 + 2 * k : 4 + 2 * k, 4:24] = 200 + g.integers(0, 50)
    cfg = GeneralizationConfig(
        out=str(tmp_path / "gen"),
        sizes=(1, 3),
        depth=2,
        width=4,
        steps=2,
        batch=4,
        samples=2,
        max_iter=3,
        validation=2,
        device="cpu",
        max_minutes=1.0,
    )
    res = run_job(generalization_job(cfg, digits=digits))
    assert [(r["N"], r["sample"]) for r in res.rows] == [(1, 0), (1, 1), (3, 0), (3, 1)]
    for n in (1, 3):
        sa, sb = res.samples[n]
        ia, ib = res.subsets[n]
        assert len(ia) == len(ib) == n and not set(ia) & set(ib)
        nn_a, _ = nearest_rmse(sa, digits[ia] / 255.0)
        rows = [r for r in res.rows if r["N"] == n]
        np.testing.assert_allclose([r["nn_a"] for r in rows], nn_a, rtol=1e-6)
        np.testing.assert_allclose(
            [r["dist_ab"] for r in rows], np.sqrt(((sa - sb) ** 2).mean(axis=(1, 2))), rtol=1e-5
        )
    # three iterations of an untrained network cannot bring σ_t from 1 to σ_L: no sample converged
    assert [(r["converged_a"], r["converged_b"]) for r in res.rows] == [(0, 0)] * 4
    assert [s["frac_both_converged"] for s in res.summary] == [0.0, 0.0]
    with open(res.csv_path) as f:
        assert len(list(csv.DictReader(f))) == 4
    assert load_image(res.figure_path).shape[2] == 3


def test_generalization_reuses_its_trained_networks_only_with_the_same_training_settings(tmp_path):
    from dataclasses import replace

    from restorelab.analysis.generalization import GeneralizationConfig, generalization_job
    from restorelab.jobs import run_job

    digits = np.zeros((8, 28, 28), np.uint8)
    for k in range(8):
        digits[k, 2 + 3 * k : 4 + 3 * k, 4:24] = 220
    cfg = GeneralizationConfig(out=str(tmp_path / "gen"), sizes=(2,), depth=2, width=4, steps=2, batch=2,
                               samples=2, max_iter=3, validation=2, device="cpu", max_minutes=1.0)
    run_job(generalization_job(cfg, digits=digits))
    weights = tmp_path / "gen" / "models" / "n2_a.safetensors"
    before = weights.read_bytes()
    log = tmp_path / "gen" / "runs" / "n2_a" / "log.csv"
    log_before = log.read_text()
    messages: list[str] = []
    again = replace(cfg, beta=0.9, reuse_models=True)
    res = run_job(generalization_job(again, digits=digits), on_progress=lambda p: messages.append(p.message))
    assert weights.read_bytes() == before and log.read_text() == log_before  # not retrained
    assert sum("reusing" in m for m in messages) == 2
    assert len(res.rows) == 2
    with pytest.raises(ValueError, match="width: 4 there, 8 here"):
        run_job(generalization_job(replace(cfg, width=8, reuse_models=True), digits=digits))
    with pytest.raises(ValueError, match="config.json is missing"):
        other = replace(cfg, out=str(tmp_path / "other"), reuse_models=True)
        run_job(generalization_job(other, digits=digits))


def test_generalization_command_passes_the_sampler_settings(tmp_path, monkeypatch):
    import restorelab.analysis.generalization as gen
    from restorelab.cli import main

    seen = {}

    def fake_job(cfg, digits=None):
        seen["cfg"] = cfg
        csv_path, fig, summary = tmp_path / "g.csv", tmp_path / "g.png", tmp_path / "s.csv"
        return gen.GeneralizationResult([], [], csv_path, fig, summary, {}, {})
        yield  # a generator job, like the real one

    monkeypatch.setattr(gen, "generalization_job", fake_job)
    rc = main(["experiment", "generalization", "--out", str(tmp_path), "--sizes", "5,7",
               "--sigma-L", "0.05", "--beta", "0.2", "--max-iter", "99"])
    assert rc == 0
    cfg = seen["cfg"]
    assert (cfg.sizes, cfg.sigma_L, cfg.beta, cfg.max_iter) == ((5, 7), 0.05, 0.2, 99)
