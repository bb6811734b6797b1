"""``restorelab inverse --task inpaint``: modes, fills, regions and progress, refusals before work."""

from __future__ import annotations

import numpy as np
import pytest

from restorelab.cli import main
from restorelab.io import load_image, save_image


@pytest.fixture
def photo(tmp_path, astronaut_small):
    return save_image(tmp_path / "in.png", astronaut_small[:64, :64])


@pytest.fixture
def mask(tmp_path):
    m = np.zeros((64, 64), np.float32)
    m[30:35, 4:60] = 1.0
    return save_image(tmp_path / "mask.png", m)


def test_inpaint_fast_prints_regions_and_keeps_known_pixels(tmp_path, photo, mask, capsys):
    out = tmp_path / "out.png"
    rc = main(["inverse", str(photo), str(out), "--task", "inpaint", "--mask", str(mask), "--max-iter", "3"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "1 region(s)" in err and "[" in err
    x, y = load_image(photo), load_image(out)
    hole = load_image(mask) > 0.5
    np.testing.assert_array_equal(y[~hole], x[~hole])
    assert np.abs(y[hole] - x[hole]).mean() > 1e-3


@pytest.mark.parametrize("fill", ["telea", "ns", "biharmonic", "patch"])
def test_inpaint_fill_mode_is_the_classical_fill(tmp_path, photo, mask, fill):
    from restorelab.image import as_float_image
    from restorelab.prior import fills

    out = tmp_path / "out.png"
    assert main(["inverse", str(photo), str(out), "--task", "inpaint", "--mask", str(mask),
                 "--mode", "fill", "--fill", fill, "-q"]) == 0
    hole = load_image(mask) > 0.5
    ref = fills.fill(fill, as_float_image(load_image(photo)), hole)
    np.testing.assert_allclose(as_float_image(load_image(out)), np.clip(ref, 0, 1), atol=0.5 / 255 + 1e-6)


def test_inpaint_without_mask_or_box_is_refused(tmp_path, photo, capsys):
    rc = main(["inverse", str(photo), str(tmp_path / "o.png"), "--task", "inpaint", "-q"])
    assert rc == 2 and "--mask" in capsys.readouterr().err
    assert main(["inverse", str(photo), str(tmp_path / "o.png"), "--task", "sr", "--mode", "fast", "-q"]) == 2
    assert not (tmp_path / "o.png").exists()


def test_existing_output_is_refused_before_any_work(tmp_path, photo, mask, capsys, monkeypatch):
    import restorelab.prior.inpaint as inp

    def boom(*a, **k):
        raise AssertionError("computed although OUT exists")

    monkeypatch.setattr(inp, "inpaint_job", boom)
    out = save_image(tmp_path / "out.png", np.zeros((4, 4), np.float32))
    rc = main(["inverse", str(photo), str(out), "--task", "inpaint", "--mask", str(mask), "-q"])
    assert rc == 2 and "exists" in capsys.readouterr().err


def test_denoise_sigma_is_optional_for_blind_methods_only(tmp_path, photo, capsys, monkeypatch):
    from restorelab.denoise.bfcnn import BFCNNDenoiser

    monkeypatch.setattr(BFCNNDenoiser, "_apply", lambda self, y: y * 0.5)
    out = tmp_path / "d.png"
    assert main(["denoise", str(photo), str(out), "--method", "bfcnn", "--param", "tile=4096"]) == 0
    assert "blind" in capsys.readouterr().out
    rc = main(["denoise", str(photo), str(tmp_path / "e.png"), "--method", "tv"])
    assert rc == 2 and "--sigma is required" in capsys.readouterr().err
