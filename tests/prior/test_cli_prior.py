"""``restorelab decompose / recompose / inverse / sample`` end to end (classical denoisers)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from restorelab import denoise
from restorelab.cli import main
from restorelab.io import load_image, save_image

pytestmark = pytest.mark.skipif("heat" not in denoise.names(), reason="needs the heat denoiser")


@pytest.fixture
def img(tmp_path, camera_small):
    p = tmp_path / "in.png"
    save_image(p, camera_small[:32, :32])
    return p


def test_decompose_recompose_roundtrip(tmp_path, img):
    out = tmp_path / "dec"
    assert main(["decompose", str(img), str(out), "--method", "heat", "--levels", "3", "--sigma", "20",
                 "-q"]) == 0
    meta = json.loads((out / "decomposition.json").read_text())
    assert meta["levels"] == 3 and len(meta["residuals"]) == 3
    r0 = load_image(out / meta["residuals"][0])
    assert r0.dtype == np.float32 and r0.min() < 0  # residuals are unclipped floats
    assert main(["recompose", str(out), str(tmp_path / "same.tif"), "-q"]) == 0
    np.testing.assert_allclose(load_image(tmp_path / "same.tif"), load_image(img), atol=1e-5)
    assert main(["recompose", str(out), str(tmp_path / "sharp.png"), "--gains", "2,1.5", "-q"]) == 0
    assert main(["recompose", str(out), str(tmp_path / "x.png"), "--gains", "1,1,1,1", "-q"]) == 2
    assert main(["decompose", str(img), str(out), "--method", "heat", "-q"]) == 2  # exists


def test_inverse_inpaint_with_mask_and_log(tmp_path, img):
    mask = np.zeros((32, 32), np.float32)
    mask[10:20, 12:22] = 1.0  # white = fill
    save_image(tmp_path / "mask.png", mask)
    out = tmp_path / "out.png"
    log = tmp_path / "log.csv"
    rc = main(["inverse", str(img), str(out), "--task", "inpaint", "--mask", str(tmp_path / "mask.png"),
               "--method", "heat", "--mode", "sample", "--samples", "2", "--beta", "0.5", "--log", str(log),
               "-q"])
    assert rc == 0
    x, y = load_image(img), load_image(out)
    assert np.abs(y[mask == 0] - x[mask == 0]).max() <= 1 / 255 + 1e-6  # measured pixels kept
    assert (tmp_path / "out_std.png").exists() and (tmp_path / "out_s1.png").exists()
    rows = log.read_text().splitlines()
    assert rows[0].startswith("t,sigma_t,h_t")
    sig = [float(r.split(",")[1]) for r in rows[1:]]
    assert sig[-1] <= 0.01 < sig[0]


def test_inverse_bad_input_leaves_nothing(tmp_path, img):
    out = tmp_path / "o.png"
    assert main(["inverse", str(img), str(out), "--task", "sr", "--mask", str(img), "--method", "heat",
                 "-q"]) == 2
    assert main(["inverse", str(img), str(out), "--task", "pixels", "--factor", "2", "--method", "heat",
                 "-q"]) == 2
    empty = tmp_path / "empty.png"
    save_image(empty, np.zeros((32, 32), np.float32))
    assert main(["inverse", str(img), str(out), "--task", "inpaint", "--mask", str(empty), "--method", "heat",
                 "-q"]) == 2
    assert not out.exists()


def test_interrupted_sampler_writes_nothing(tmp_path, monkeypatch):
    """Ctrl-C during the run: exit 130 and no output file (outputs are written at the end)."""
    from restorelab.denoise.base import Denoiser

    calls = {"n": 0}
    orig = Denoiser.denoise_tensor

    def interrupting(self, y, sigma):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return orig(self, y, sigma)

    monkeypatch.setattr(Denoiser, "denoise_tensor", interrupting)
    out = tmp_path / "s.png"
    log = tmp_path / "log.csv"
    assert main(["sample", str(out), "--size", "16,16", "--method", "heat", "--log", str(log), "-q"]) == 130
    assert not out.exists() and not log.exists()
    assert list(tmp_path.iterdir()) == []


def test_sample_grid(tmp_path):
    out = tmp_path / "grid.png"
    assert main(["sample", str(out), "--size", "8,8", "--method", "heat", "--samples", "4", "--grid",
                 "--sigma-L", "5", "--max-iter", "200", "-q"]) == 0
    g = load_image(out)
    assert g.shape == (2 * 8 + 3 * 2, 2 * 8 + 3 * 2)


def test_bench_classical_answers(camera_small):
    from restorelab.bench.inverse import TASK_SETTINGS, classical
    from restorelab.metrics import psnr
    from restorelab.prior import operators

    x = camera_small[:64, :64]
    got = {}
    for task, kw in TASK_SETTINGS.items():
        op = operators.make(task, x.shape, **kw)
        got[task] = psnr(x, np.clip(classical(task, op, x), 0, 1))
    assert got["inpaint"] > 18 and got["pixels"] > 18 and got["sr"] > 20, got


def test_bench_inverse_writes_its_section(tmp_path, camera_small):
    d = tmp_path / "set"
    d.mkdir()
    save_image(d / "a.png", camera_small[:24, :24])
    md = tmp_path / "B.md"
    rc = main(["bench", "inverse", "--set", str(d), "--size", "16", "--tasks", "sr,pixels", "--samples", "2",
               "--beta", "0.5", "--method", "heat", "--out", str(md)])
    assert rc == 0
    text = md.read_text()
    assert "<!-- bench:inverse-16 -->" in text and "| sr |" in text and "bicubic" in text
