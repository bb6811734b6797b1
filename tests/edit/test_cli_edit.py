"""``restorelab clone`` / ``restorelab poisson`` round trips on temporary files."""

from __future__ import annotations

import numpy as np
import pytest

from restorelab.cli import main
from restorelab.edit import contrast_enhance, seamless_clone
from restorelab.io import load_image, save_image


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    src = rng.random((40, 48, 3)).astype(np.float32)
    dst = rng.random((50, 60, 3)).astype(np.float32)
    yy, xx = np.mgrid[:40, :48]
    mask = ((yy - 20) ** 2 + (xx - 24) ** 2 < 150).astype(np.float32)
    paths = {k: tmp_path / f"{k}.png" for k in ("src", "dst", "mask")}
    save_image(paths["src"], src)
    save_image(paths["dst"], dst, bit_depth=16)
    save_image(paths["mask"], mask)
    return tmp_path, paths


def test_clone_round_trip(files) -> None:
    tmp, p = files
    out = tmp / "out.png"
    rc = main(["clone", str(p["src"]), str(p["dst"]), str(out), "--mask", str(p["mask"]),
               "--offset=-3,7", "--mode", "mixed"])
    assert rc == 0
    got = load_image(out)
    src, dst, mask = load_image(p["src"]), load_image(p["dst"]), load_image(p["mask"]) > 0
    ref = seamless_clone(src, dst, mask, (-3, 7), mode="mixed")
    assert np.abs(got - np.clip(ref, 0, 1)).max() <= 0.5 / 65535 + 1e-7  # 16-bit destination → 16-bit output
    # refuses to overwrite, then does with --overwrite
    assert main(["clone", str(p["src"]), str(p["dst"]), str(out), "--mask", str(p["mask"])]) == 2
    args = ["clone", str(p["src"]), str(p["dst"]), str(out), "--mask", str(p["mask"]), "--overwrite"]
    assert main(args) == 0


def test_clone_bad_mask_size_is_a_user_error(files, capsys) -> None:
    tmp, p = files
    rc = main(["clone", str(p["src"]), str(p["dst"]), str(tmp / "o.png"), "--mask", str(p["dst"])])
    assert rc == 2
    assert "mask" in capsys.readouterr().err


def test_poisson_round_trip(files) -> None:
    tmp, p = files
    out = tmp / "c.png"
    assert main(["poisson", "contrast", str(p["src"]), str(out), "--factor", "1.3"]) == 0
    ref = contrast_enhance(load_image(p["src"]), None, 1.3)
    assert np.abs(load_image(out) - np.clip(ref, 0, 1)).max() <= 0.5 / 255 + 1e-6
    for args in (["flatten", "--low-threshold", "20"], ["illumination", "--beta", "0.3"],
                 ["color", "--red-mul", "2"], ["tile"]):
        o = tmp / f"{args[0]}.png"
        extra = [] if args[0] == "tile" else ["--mask", str(p["mask"])]
        assert main(["poisson", args[0], str(p["src"]), str(o), *args[1:], *extra]) == 0
        assert load_image(o).shape == (40, 48, 3)
    assert main(["poisson", "contrast", str(p["src"]), str(tmp / "x.png"), "--factor", "abc"]) == 2
