"""``restorelab bench inpaint``: its masks and its table, on a tiny synthetic set."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from restorelab.bench.inpaint import make_masks
from restorelab.io import save_image


def test_masks_have_the_declared_shapes() -> None:
    s = make_masks((256, 256), "scratches", 0, count=1)
    # one 5-px stroke (3√2 px to the outside at most, on a diagonal), and a long one
    assert ndimage.distance_transform_edt(s).max() <= 4.5 and s.sum() > 5 * 50
    b = make_masks((256, 256), "blobs", 1)
    lab, n = ndimage.label(b)
    assert 1 <= n <= 3
    for sl in ndimage.find_objects(lab):
        h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        assert 25 <= min(h, w) and max(h, w) <= 55
    t = make_masks((256, 256), "text", 2)
    assert ndimage.label(t)[1] >= 8  # a line of letters


def test_bench_measures_every_method_side_by_side(tmp_path, astronaut_small) -> None:
    import argparse

    from restorelab.bench.inpaint import run_inpaint_bench

    d = tmp_path / "set"
    d.mkdir()
    save_image(d / "a.png", astronaut_small[:64, :64])
    args = argparse.Namespace(
        set_dir=str(d), limit=1, full=0, crop=64, masks="blobs,text", methods="telea,ns,biharmonic,patch",
        fast="", sample_k=2, sample_iters=5, sample_masks="blobs", big=False, seed=0, device="cpu",
    )
    text, raw = run_inpaint_bench(args)
    rows = raw["rows"]
    assert [(r[1], r[2]) for r in rows] == [(k, m) for k in ("blobs", "text")
                                            for m in ("telea", "ns", "biharmonic", "patch")]
    psnrs = np.array([float(r[3]) for r in rows])
    assert np.all((psnrs > 15) & (psnrs < 80)) and len(set(psnrs.round(2))) > 1
    assert text.count("\n|") == len(rows) + 2  # header, rule and one line per row
