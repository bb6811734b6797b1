"""Every command: outputs planned before work (collisions, existing files, links), one line
on stderr for every failure, declared ranges checked before any allocation, one mask rule,
decompositions written whole, and the device fallback."""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from restorelab import denoise
from restorelab.cli import main
from restorelab.io import load_image, save_image


@pytest.fixture
def img(tmp_path, camera_small) -> Path:
    return save_image(tmp_path / "in.png", camera_small[:32, :32])


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _no_work(monkeypatch) -> None:
    """Any job or denoiser built from here on fails the test: the command must refuse first."""

    def boom(*a, **k):
        raise AssertionError("work started before the outputs were checked")

    monkeypatch.setattr(denoise, "get", boom)
    import restorelab.prior as prior

    for name in ("sample_job", "inverse_job", "pnp_job", "decompose_job"):
        monkeypatch.setattr(prior, name, boom)


# --- output planning ---------------------------------------------------------------------------


def test_log_on_the_output_path_is_refused_before_work(tmp_path, img, capsys, monkeypatch):
    _no_work(monkeypatch)
    out = tmp_path / "out.png"
    rc, _, err = _run(capsys, "sample", out, "--method", "heat", "--size", "16,16", "--log", out, "-q")
    assert rc == 2 and "same path" in err and len(err.strip().splitlines()) == 1
    rc, _, err = _run(capsys, "inverse", img, out, "--task", "inpaint", "--box", "8",
                      "--method", "heat", "--log", out,
                      "-q")
    assert rc == 2 and "same path" in err
    rc, _, err = _run(capsys, "inverse", img, out, "--task", "inpaint", "--box", "8",
                      "--method", "heat",
                      "--degraded", out, "-q")
    assert rc == 2 and "same path" in err
    assert not out.exists()


def test_outputs_that_are_one_file_through_a_link_are_refused(tmp_path, img, capsys, monkeypatch):
    _no_work(monkeypatch)
    out = tmp_path / "out.png"
    link = tmp_path / "log.csv"
    link.symlink_to(out)  # dangling now; it would be the image once written
    rc, _, err = _run(capsys, "inverse", img, out, "--task", "inpaint", "--box", "8",
                      "--method", "heat", "--log", link,
                      "--overwrite", "-q")
    assert rc == 2 and "same file" in err
    assert not out.exists()


def test_denoise_refuses_an_existing_output_before_building_the_denoiser(tmp_path, img, capsys, monkeypatch):
    _no_work(monkeypatch)
    out = save_image(tmp_path / "out.png", np.zeros((4, 4), np.float32))
    rc, _, err = _run(capsys, "denoise", img, out, "--method", "tv", "--sigma", "20", "-q")
    assert rc == 2 and "exists; use --overwrite" in err


def test_dangling_link_output_is_named(tmp_path, img, capsys):
    out = tmp_path / "out.png"
    out.symlink_to(tmp_path / "nowhere" / "x.png")
    rc, _, err = _run(capsys, "noise", img, out, "--sigma", "10", "-q")
    assert rc == 2 and "symbolic link to" in err and "does not exist" in err


def test_full_disk_while_writing_the_log_is_one_line(tmp_path, img, capsys, monkeypatch):
    out, log = tmp_path / "out.png", tmp_path / "log.csv"
    real_fsync = os.fsync

    def fsync(fd):
        if "log.csv" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    rc, _, err = _run(capsys, "inverse", img, out, "--task", "inpaint", "--box", "8",
                      "--method", "heat", "--max-iter", "3",
                      "--log", log, "-q")
    assert rc == 1
    lines = [x for x in err.strip().splitlines() if "warning" not in x]
    assert lines == [lines[0]] and "No space left" in lines[0] and "Traceback" not in err
    assert out.exists() and not log.exists()  # the finished result is kept, no 0-byte log
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.png"]  # no temporary file


def test_library_warnings_do_not_reach_stderr(tmp_path, img, capsys, monkeypatch):
    import restorelab.edit as edit

    chatter = compile("import warnings\nwarnings.warn('library chatter')", "/site-packages/tifffile/x.py",
                      "exec")
    real_apply = edit.apply

    def chatty_apply(*a, **k):  # a third-party warning (e.g. tifffile's) during the command
        exec(chatter, {})
        return real_apply(*a, **k)

    monkeypatch.setattr(edit, "apply", chatty_apply)
    grey = np.full((32, 32), 100 / 255, np.float32)
    grey[4:12, 4:12] = 1.0
    mask = save_image(tmp_path / "m.png", grey)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        rc, _, err = _run(capsys, "poisson", "contrast", img, tmp_path / "o.png", "--mask", mask)
    assert rc == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restorelab: warning: ") and "mid-grey" in lines[0]
    assert seen == []  # both went through the command line's display, which dropped the chatter


# --- declared ranges ---------------------------------------------------------------------------


@pytest.mark.parametrize("size,needle", [
    ("4096,4096", "memory"),
    ("20000,20000", "between 4 and 4096"),
    ("100000,100000", "between 4 and 4096"),
    ("0,8", "between 4 and 4096"),
])
def test_sample_size_is_bounded_before_any_allocation(tmp_path, capsys, monkeypatch, size, needle):
    _no_work(monkeypatch)
    t0 = time.perf_counter()
    rc, _, err = _run(capsys, "sample", tmp_path / "s.png", "--method", "heat", "--size", size, "-q")
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert time.perf_counter() - t0 < 5


def test_memory_estimate_follows_the_budget(tmp_path, capsys, monkeypatch):
    _no_work(monkeypatch)
    monkeypatch.setenv("RESTORELAB_MAX_MEMORY", "1M")
    rc, _, err = _run(capsys, "sample", tmp_path / "s.png", "--method", "heat", "--size", "64,64",
                      "--samples", "8", "-q")
    assert rc == 2 and "over the budget of 1 MiB" in err


def test_decompose_levels_are_bounded(tmp_path, img, capsys, monkeypatch):
    _no_work(monkeypatch)
    rc, _, err = _run(capsys, "decompose", img, tmp_path / "d", "--method", "heat", "--levels", "100000",
                      "-q")
    assert rc == 2 and "--levels must be between 1 and 16" in err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("args,needle", [
    (["--task", "inpaint", "--box", "0"], "--box must be between 1 and 31"),
    (["--task", "inpaint", "--box", "40"], "--box must be between 1 and 31"),
    (["--task", "sr", "--factor", "64"], "at most 16"),
    (["--task", "sr", "--factor", "17"], "at most 16"),
    (["--task", "sr", "--factor", "65"], "--factor must be between 2 and 64"),
    (["--task", "deblur", "--solver", "pnp-admm", "--iters", "0"], "--iters must be between 1 and 10000"),
])
def test_inverse_geometry_is_checked(tmp_path, img, capsys, monkeypatch, args, needle):
    _no_work(monkeypatch)
    rc, _, err = _run(capsys, "inverse", img, tmp_path / "o.png", "--method", "heat", *args, "-q")
    assert rc == 2 and needle in err, err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("cmd", ["noise", "denoise", "decompose"])
def test_sigma_over_255_is_refused(tmp_path, img, capsys, monkeypatch, cmd):
    _no_work(monkeypatch)
    extra = {"noise": [], "denoise": ["--method", "tv"], "decompose": ["--method", "heat"]}[cmd]
    try:
        rc = main([cmd, str(img), str(tmp_path / "o.png"), "--sigma", "1e9", *extra, "-q"])
    except SystemExit as e:  # argparse refuses a bad value of a typed option
        rc = e.code
    assert rc == 2 and "between 0 and 255" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


# --- masks ---------------------------------------------------------------------------------------


def test_grey_mask_pixels_below_half_are_not_filled(tmp_path, img, capsys):
    m = np.full((32, 32), 100 / 255, np.float32)  # grey: below half of full scale, so measured
    m[10:18, 10:18] = 1.0
    save_image(tmp_path / "m.png", m)
    rc, _, _ = _run(capsys, "inverse", img, tmp_path / "o.png", "--task", "inpaint", "--mask",
                    tmp_path / "m.png", "--method", "heat", "--max-iter", "5", "-q")
    assert rc == 0
    x, y = load_image(img), load_image(tmp_path / "o.png")
    keep = m < 0.5
    assert np.abs(y[keep] - x[keep]).max() <= 1 / 255 + 1e-6


# --- decompose / recompose ----------------------------------------------------------------------


def test_decompose_killed_midway_leaves_no_partial_set(tmp_path, img, capsys, monkeypatch):
    import restorelab.io as rio

    real = rio.save_image
    calls = {"n": 0}

    def dies_on_third(path, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(path, *a, **k)

    monkeypatch.setattr(rio, "save_image", dies_on_third)
    out = tmp_path / "dec"
    rc, _, _ = _run(capsys, "decompose", img, out, "--method", "heat", "--levels", "3", "-q")
    assert rc == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]
    monkeypatch.setattr(rio, "save_image", real)
    assert _run(capsys, "decompose", img, out, "--method", "heat", "--levels", "2", "-q")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["base.tif", "decomposition.json", "residual_00.tif",
                                                      "residual_01.tif"]
    rc, _, _ = _run(capsys, "decompose", img, out, "--method", "heat", "--levels", "1", "--overwrite", "-q")
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["base.tif", "decomposition.json", "residual_00.tif"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dec", "in.png"]


@pytest.fixture
def decomposition(tmp_path, img, capsys) -> Path:
    out = tmp_path / "dec"
    assert main(["decompose", str(img), str(out), "--method", "heat", "--levels", "2", "-q"]) == 0
    capsys.readouterr()
    return out


@pytest.mark.parametrize("edit,needle", [
    (lambda m: m.update(base="../in.png"), "not a plain file name"),
    (lambda m: m.update(residuals=["residual_00.tif", "/etc/passwd"]), "not a plain file name"),
    (lambda m: m.update(residuals=5), "'residuals' must be a non-empty list"),
    (lambda m: m.update(base=7), "must be a file name"),
    (lambda m: m.update(residuals=["missing.tif"]), "missing or not a regular file"),
])
def test_recompose_validates_its_index(decomposition, tmp_path, capsys, edit, needle):
    idx = decomposition / "decomposition.json"
    meta = json.loads(idx.read_text())
    edit(meta)
    idx.write_text(json.dumps(meta))
    rc, _, err = _run(capsys, "recompose", decomposition, tmp_path / "r.png", "-q")
    assert rc == 2 and needle in err, err
    assert not (tmp_path / "r.png").exists()


def test_recompose_refuses_a_link_out_of_the_folder_and_mismatched_layers(decomposition, tmp_path, capsys):
    idx = decomposition / "decomposition.json"
    meta = json.loads(idx.read_text())
    (decomposition / "sneaky.tif").symlink_to(tmp_path / "in.png")
    idx.write_text(json.dumps({**meta, "base": "sneaky.tif"}))
    rc, _, err = _run(capsys, "recompose", decomposition, tmp_path / "r.png", "-q")
    assert rc == 2 and "leads outside the folder" in err
    save_image(decomposition / "small.tif", np.zeros((8, 8), np.float32), bit_depth=32)
    idx.write_text(json.dumps({**meta, "residuals": [meta["residuals"][0], "small.tif"]}))
    rc, _, err = _run(capsys, "recompose", decomposition, tmp_path / "r.png", "-q")
    assert rc == 2 and "differs from the base layer's" in err
    idx.write_text("[1, 2]")
    rc, _, err = _run(capsys, "recompose", decomposition, tmp_path / "r.png", "-q")
    assert rc == 2 and "expected a JSON object" in err


# --- device fallback ------------------------------------------------------------------------------


def test_cli_denoise_falls_back_to_the_cpu_on_gpu_out_of_memory(tmp_path, img, capsys, monkeypatch):
    import restorelab.device as device

    cls = denoise.get_class("bfcnn")
    made = []

    class Fake:
        def __init__(self, dev):
            self.dev = dev

        def job(self, y, s):
            if self.dev != "cpu":
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 9 GiB")
            yield from ()
            return y * 0 + 0.5

    def get(name, device="auto", **kw):
        made.append(device)
        return Fake(device)

    monkeypatch.setattr(device, "resolve_device", lambda d="auto": "cuda:0")
    monkeypatch.setattr(denoise, "get", get)
    assert cls.torch_native
    rc, out, err = _run(capsys, "denoise", img, tmp_path / "o.png", "--method", "bfcnn", "--sigma", "20")
    assert rc == 0, err
    assert made == ["cuda:0", "cpu"]
    assert "retrying on the CPU" in err and "9 GiB" in err
    np.testing.assert_allclose(load_image(tmp_path / "o.png"), 128 / 255, atol=1e-6)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_special_and_long_names_are_one_line_errors(tmp_path, img, capsys):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    rc, _, err = _run(capsys, "denoise", fifo, tmp_path / "o.png", "--method", "tv", "--sigma", "10", "-q")
    assert rc == 2 and err.strip() == f"restorelab: error: {fifo}: is a named pipe (FIFO), not a regular file"
    long = tmp_path / ("a" * 300 + ".png")
    for argv in (("noise", img, long), ("noise", long, tmp_path / "o.png")):
        rc, _, err = _run(capsys, *argv, "--sigma", "5", "-q")
        assert rc == 2 and "file name is too long (304 bytes" in err and len(err.strip().splitlines()) == 1
