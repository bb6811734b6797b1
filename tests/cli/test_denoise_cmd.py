"""`restorelab methods | noise | denoise | bench denoise`, run in-process on temporary files."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import ndimage

from restorelab import denoise
from restorelab.cli import main
from restorelab.denoise.base import Denoiser
from restorelab.io import load_image, save_image
from restorelab.jobs import Progress
from restorelab.metrics import psnr
from restorelab.noise import add_gaussian_noise
from restorelab.params import Param


class _BoxDenoiser(Denoiser):
    """Test-only: mean over (2r+1)² windows, optionally blended with y by 1 − strength."""

    name = "test-box"
    title = "Box filter (test only)"
    citation = "none"
    params = (
        Param("radius", int, 1, lo=1, hi=5, help="window radius"),
        Param("strength", float, lambda s: 1.0, lo=0.0, hi=1.0, sigma_like=True, help="blend"),
    )

    def _denoise(self, x: np.ndarray, sigma: float, p: Mapping[str, Any]) -> np.ndarray:
        k = 2 * p["radius"] + 1
        b = ndimage.uniform_filter(x, size=(k, k, 1), mode="reflect")
        return p["strength"] * b + (1 - p["strength"]) * x


class _HeatDenoiser(Denoiser):
    """Test-only iterative method: explicit heat-equation steps, one Progress per step."""

    name = "test-heat"
    title = "Heat steps (test only)"
    iterative = True
    params = (Param("steps", int, 6, lo=1, hi=100, help="iterations"),)
    seen_steps: list[int] = []

    def _job(self, x: np.ndarray, sigma: float, p: Mapping[str, Any]) -> Generator[Progress, None, Any]:
        u = x.copy()
        for i in range(p["steps"]):
            u = u + 0.2 * ndimage.laplace(u, mode="reflect") if u.ndim == 2 else u + 0.2 * np.stack(
                [ndimage.laplace(u[..., c], mode="reflect") for c in range(u.shape[2])], axis=2)
            _HeatDenoiser.seen_steps.append(i + 1)
            yield Progress(i + 1, p["steps"], message="heat")
        return u


@pytest.fixture(autouse=True)
def _test_methods(monkeypatch):
    denoise.names()  # load the real families first
    monkeypatch.setitem(denoise._REGISTRY, "test-box", _BoxDenoiser)  # noqa: SLF001
    monkeypatch.setitem(denoise._REGISTRY, "test-heat", _HeatDenoiser)  # noqa: SLF001
    _HeatDenoiser.seen_steps = []


@pytest.fixture
def clean_png(tmp_path, camera_small) -> Path:
    return save_image(tmp_path / "clean.png", camera_small)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# --- methods --------------------------------------------------------------------------------


def test_methods_lists_every_registered_denoiser(capsys):
    rc, out, _ = _run(capsys, "methods")
    assert rc == 0
    for cls in denoise.available():
        assert f"{cls.name} — " in out
        for prm in cls.params:
            assert f"--param {prm.name} (" in out
    assert "window radius" in out and "Box filter (test only)" in out
    # σ-like parameters are shown on the 0..255 scale, as typed with --param
    assert "strength (float [0.0, 255.0] on the 0..255 scale, default f(σ), e.g. 255 at σ=25)" in out


# --- noise ----------------------------------------------------------------------------------


def test_noise_is_seeded_and_unclipped_in_float_outputs(tmp_path, clean_png, capsys):
    x = load_image(clean_png)
    expected = add_gaussian_noise(x, 25 / 255, seed=3)
    for name in ("n.npy", "n.tif"):
        rc, _, err = _run(capsys, "noise", str(clean_png), str(tmp_path / name), "--sigma", "25",
                          "--seed", "3")
        assert rc == 0, err
        y = load_image(tmp_path / name)
        np.testing.assert_array_equal(y, expected)
        assert y.min() < 0 or y.max() > 1
    rc, _, _ = _run(capsys, "noise", str(clean_png), str(tmp_path / "n.png"), "--sigma", "25", "--seed", "3")
    y8 = load_image(tmp_path / "n.png")
    assert rc == 0 and y8.min() >= 0 and y8.max() <= 1
    assert np.abs(y8 - np.clip(expected, 0, 1)).max() <= 0.5 / 255 + 1e-6


# --- denoise --------------------------------------------------------------------------------


def test_noise_then_denoise_with_params(tmp_path, clean_png, capsys):
    x = load_image(clean_png)
    noisy = tmp_path / "noisy.npy"
    assert _run(capsys, "noise", str(clean_png), str(noisy), "--sigma", "25", "--seed", "0")[0] == 0
    y = load_image(noisy)
    out = tmp_path / "den.tif"
    rc, stdout, err = _run(capsys, "denoise", str(noisy), str(out), "--method", "test-box", "--sigma", "25",
                           "--param", "radius=2", "-p", "strength=127.5", "--bit-depth", "32")
    assert rc == 0, err
    assert "wrote" in stdout
    got = load_image(out)
    ref = denoise.get("test-box", radius=2, strength=0.5)(y, 25 / 255)
    np.testing.assert_allclose(got, ref, atol=1e-6)
    assert psnr(x, got) > psnr(x, y) + 2


def test_real_fast_method_beats_noisy_input(tmp_path, clean_png, capsys):
    fast = [m for m in ("heat", "gaussian", "wavelet", "tikhonov") if m in denoise.names()]
    if not fast:
        pytest.skip("no fast classical denoiser registered yet")
    x = load_image(clean_png)
    noisy = tmp_path / "noisy.png"
    _run(capsys, "noise", str(clean_png), str(noisy), "--sigma", "25", "--seed", "1")
    out = tmp_path / "den.png"
    rc, _, err = _run(capsys, "denoise", str(noisy), str(out), "--method", fast[0], "--sigma", "25")
    assert rc == 0, err
    assert psnr(x, load_image(out)) > psnr(x, load_image(noisy)) + 3


def test_iterative_method_runs_as_a_job_with_progress(tmp_path, clean_png, capsys):
    out = tmp_path / "heat.png"
    rc, _, err = _run(capsys, "denoise", str(clean_png), str(out), "-m", "test-heat", "--sigma", "20",
                      "-p", "steps=7")
    assert rc == 0, err
    assert _HeatDenoiser.seen_steps == list(range(1, 8))
    assert "test-heat" in err  # the tqdm bar on stderr
    assert out.exists()


def test_sigma_auto_estimates_noise(tmp_path, camera_small, capsys):
    y = add_gaussian_noise(camera_small, 20 / 255, seed=0)
    save_image(tmp_path / "y.npy", y)
    rc, stdout, err = _run(capsys, "denoise", str(tmp_path / "y.npy"), str(tmp_path / "o.png"),
                           "-m", "test-box", "--sigma", "auto")
    assert rc == 0, err
    est = float(stdout.split("σ = ")[1].split("/")[0])
    assert 17 < est < 23


def test_batch_folder_and_glob(tmp_path, camera_small, astronaut_small, capsys):
    src = tmp_path / "in"
    src.mkdir()
    save_image(src / "a.png", camera_small)
    save_image(src / "b.tif", astronaut_small, bit_depth=16)
    save_image(src / "c.npy", camera_small[:64])
    (src / "notes.txt").write_text("ignored")
    rc, _, err = _run(capsys, "denoise", str(src), str(tmp_path / "out"), "-m", "test-box", "--sigma", "25")
    assert rc == 0, err
    assert sorted(os.listdir(tmp_path / "out")) == ["a.png", "b.tif", "c.npy"]
    from restorelab.io import image_info

    assert image_info(tmp_path / "out" / "b.tif").bit_depth == 16  # 16-bit in, 16-bit out
    assert load_image(tmp_path / "out" / "b.tif").shape == astronaut_small.shape
    rc, _, err = _run(capsys, "denoise", str(src / "*.png"), str(tmp_path / "out2"), "-m", "test-box",
                      "--sigma", "25")
    assert rc == 0, err
    assert os.listdir(tmp_path / "out2") == ["a.png"]
    # a second run does not replace outputs unless asked, and fails before doing any work
    before = (tmp_path / "out" / "a.png").read_bytes()
    rc, _, err = _run(capsys, "denoise", str(src), str(tmp_path / "out"), "-m", "test-box", "--sigma", "5")
    assert rc == 2 and "exists; use --overwrite" in err
    assert (tmp_path / "out" / "a.png").read_bytes() == before
    rc, _, err = _run(capsys, "denoise", str(src), str(tmp_path / "out"), "-m", "test-box", "--sigma", "5",
                      "--overwrite")
    assert rc == 0, err


def _huge_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("kind", ["zero-byte", "text", "truncated", "oversized", "missing"])
@pytest.mark.parametrize("command", ["denoise", "noise"])
def test_bad_input_file(tmp_path, clean_png, capsys, kind, command):
    bad = tmp_path / "bad.png"
    if kind == "zero-byte":
        bad.write_bytes(b"")
    elif kind == "text":
        bad.write_text("not an image at all\n")
    elif kind == "truncated":
        data = clean_png.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "oversized":
        bad.write_bytes(_huge_png())
    out = tmp_path / "out.png"
    extra = ["-m", "test-box"] if command == "denoise" else []
    rc, _, err = _run(capsys, command, str(bad), str(out), "--sigma", "25", *extra)
    assert rc != 0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("restorelab: error:") and "bad.png" in lines[0]
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == sorted(["clean.png"] + (["bad.png"] if kind != "missing" else []))


@pytest.mark.parametrize(
    "args,needle",
    [(["-m", "nope", "--sigma", "25"], "unknown denoiser"),
     (["-m", "test-box", "--sigma", "25", "-p", "foo=1"], "no parameter 'foo'"),
     (["-m", "test-box", "--sigma", "25", "-p", "radius=9"], "out of range"),
     (["-m", "test-box", "--sigma", "25", "-p", "radius"], "NAME=VALUE"),
     (["-m", "test-box", "--sigma", "-2"], "sigma"),
     (["-m", "test-box", "--sigma", "x"], "sigma")],
)
def test_bad_arguments(tmp_path, clean_png, capsys, args, needle):
    out = tmp_path / "o.png"
    rc, _, err = _run(capsys, "denoise", str(clean_png), str(out), *args)
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_output_path(tmp_path, clean_png, capsys):
    rc, _, err = _run(capsys, "denoise", str(clean_png), str(tmp_path / "o.bmp"), "-m", "test-box",
                      "--sigma", "5")
    assert rc == 2 and "extension" in err
    rc, _, err = _run(capsys, "denoise", str(clean_png), str(tmp_path / "no" / "o.png"), "-m", "test-box",
                      "--sigma", "5")
    assert rc == 2 and "does not exist" in err
    rc, _, err = _run(capsys, "denoise", str(clean_png), str(tmp_path / "o.png"), "-m", "test-box",
                      "--sigma", "5", "--bit-depth", "32")
    assert rc == 2 and "cannot store 32-bit" in err
    assert sorted(os.listdir(tmp_path)) == ["clean.png"]


def test_batch_with_one_bad_file(tmp_path, camera_small, capsys):
    src = tmp_path / "in"
    src.mkdir()
    save_image(src / "a.png", camera_small)
    (src / "b.png").write_text("text renamed")
    save_image(src / "c.png", camera_small)
    rc, _, err = _run(capsys, "denoise", str(src), str(tmp_path / "out"), "-m", "test-box", "--sigma", "25")
    assert rc == 2
    assert "b.png" in err and "1 of 3 images failed" in err
    assert sorted(os.listdir(tmp_path / "out")) == ["a.png", "c.png"]


# --- bench ----------------------------------------------------------------------------------


def test_bench_denoise_writes_a_table(tmp_path, camera_small, capsys):
    d = tmp_path / "set"
    d.mkdir()
    save_image(d / "1.png", camera_small[:64, :64])
    save_image(d / "2.png", camera_small[64:, 64:])
    save_image(d / "3.png", camera_small[64:, :64])
    md = tmp_path / "B.md"
    rc, out, err = _run(capsys, "bench", "denoise", "--set", str(d), "--sigma", "25,50",
                        "--methods", "test-box", "--peers", "skimage-tv,cv2-nlm", "--limit", "2",
                        "--out", str(md))
    assert rc == 0, err
    text = md.read_text()
    assert "<!-- bench:denoise-set -->" in text and "### σ = 25" in text and "### σ = 50" in text
    assert "--methods test-box --peers skimage-tv,cv2-nlm --limit 2 --seed 0" in text
    rows = {ln.split("|")[1].strip(): ln.split("|") for ln in text.splitlines() if ln.startswith("| ")}
    assert {"noisy input", "test-box", "skimage-tv", "cv2-nlm"} <= set(rows)
    assert "2 gray images" in text
    # the first table (σ = 25): every method beats the noisy input; skimage-tv's time ratio is 1
    first = text.split("### σ = 50")[0]
    t = {ln.split("|")[1].strip(): ln.split("|") for ln in first.splitlines() if ln.startswith("| ")}
    noisy = float(t["noisy input"][3])
    for m in ("test-box", "skimage-tv", "cv2-nlm"):
        assert float(t[m][3]) > noisy + 2, m
    assert float(t["skimage-tv"][6]) == 1.0
    assert "σ = 25" in out  # printed as well


def test_bench_bad_arguments(tmp_path, capsys):
    rc, _, err = _run(capsys, "bench", "denoise", "--set", str(tmp_path / "none"), "--sigma", "25",
                      "--no-write")
    assert rc == 2 and "not a folder" in err
    rc, _, err = _run(capsys, "bench", "denoise", "--set", str(tmp_path), "--sigma", "a,b")
    assert rc == 2 and "--sigma" in err
    rc, _, err = _run(capsys, "bench", "denoise", "--set", str(tmp_path), "--sigma", "25", "--peers", "foo")
    assert rc == 2


def test_options_of_the_window_open_it_without_naming_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """``restorelab --self-test`` (the packaging script's check) is ``restorelab gui --self-test``;
    the top-level options keep their meaning."""
    from restorelab import cli
    from restorelab.cli import app_cmd

    seen: list[tuple[str | None, bool]] = []
    monkeypatch.setattr(app_cmd, "run", lambda a: seen.append((a.image, a.self_test)) or 0)
    assert cli.main(["--self-test"]) == 0
    assert cli.main(["photo.png", "--self-test"]) == 0
    assert seen == [(None, True), ("photo.png", True)]
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and seen == [(None, True), ("photo.png", True)]
