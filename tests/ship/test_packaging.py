"""Packaging files: desktop entry, icon, spec, build script, self-test."""

from __future__ import annotations

import ast
import configparser
import io
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_desktop_entry_is_valid():
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str  # keys are case-sensitive
    cp.read(ROOT / "resources" / "restorelab.desktop", encoding="utf-8")
    e = cp["Desktop Entry"]
    assert e["Type"] == "Application" and e["Exec"].split()[0] == "restorelab"
    assert e["Icon"] == "restorelab" and e["Terminal"] == "false"
    assert e["Categories"].endswith(";") and "Graphics" in e["Categories"].split(";")
    assert {"image/png", "image/jpeg", "image/tiff"} <= set(filter(None, e["MimeType"].split(";")))
    if shutil.which("desktop-file-validate"):
        r = subprocess.run(["desktop-file-validate", str(ROOT / "resources" / "restorelab.desktop")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_icon_svg_and_png():
    from PIL import Image

    root = ET.parse(ROOT / "resources" / "icons" / "restorelab.svg").getroot()
    assert root.tag.endswith("svg") and root.get("viewBox") == "0 0 256 256"
    im = Image.open(ROOT / "resources" / "icons" / "restorelab.png")
    assert im.size == (256, 256) and im.mode == "RGBA"
    a = np.asarray(im)
    assert a[..., 3].min() == 0 and a[128, 128, 3] == 255  # transparent corners, opaque body


def test_spec_and_build_script():
    spec = (ROOT / "packaging" / "restorelab.spec").read_text()
    tree = ast.parse(spec)  # valid Python
    names = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert {"Analysis", "PYZ", "EXE", "COLLECT"} <= names  # one-folder build
    for must in ('"samples"', '"models"', "PySide6.{m}", "QtQml", "QtQuick", "QtWebEngineCore", "Qt3DCore",
                 "QtMultimedia", "pytest", "torch._inductor", "torch/test/"):
        assert must in spec, must
    sh = ROOT / "packaging" / "build.sh"
    assert subprocess.run(["bash", "-n", str(sh)]).returncode == 0
    text = sh.read_text()
    assert "--self-test" in text and "du -sh" in text and "pyinstaller" in text.lower()
    assert (ROOT / "packaging" / "install.sh").exists()
    ast.parse((ROOT / "packaging" / "restorelab_entry.py").read_text())


def test_core_selftest_passes_and_reports_each_part():
    from restorelab.selftest import run

    buf = io.StringIO()
    assert run(out=buf) == 0, buf.getvalue()
    text = buf.getvalue()
    for part in ("open sample", "denoise", "seamless clone", "sampler (10 steps)", "session file"):
        assert f"ok   {part}" in text, text
    assert "FAIL" not in text and "self-test passed" in text
    assert "denoise (" in text and "bfcnn: MSE" in text  # the shipped learned denoiser ran


def test_selftest_reports_a_failure(monkeypatch):
    from restorelab import selftest

    def broken():
        raise RuntimeError("sample is damaged")

    monkeypatch.setattr(selftest, "_sample_image", broken)
    buf = io.StringIO()
    assert selftest.run(out=buf) == 1
    assert "FAIL open sample" in buf.getvalue()


def test_cli_registers_the_hardening_commands():
    import argparse

    from restorelab.cli import ship_cmd

    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command")
    bench = sub.add_parser("bench").add_subparsers(dest="bench_command")
    ship_cmd.register(sub, bench)
    a = p.parse_args(["bench", "fuzz", "--n", "10", "--seed", "3"])
    assert (a.n, a.seed, a.jobs) == (10, 3, 1) and callable(a.func)
    a = p.parse_args(["bench", "soak"])
    assert (a.denoise, a.sample) == (1000, 200)
    assert callable(p.parse_args(["bench", "faults"]).func)
    assert p.parse_args(["selftest"]).image is None
    with pytest.raises(SystemExit):
        p.parse_args(["bench", "fuzz", "--n", "many"])
