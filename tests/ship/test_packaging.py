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


def _run_spec(binaries: list, datas: list) -> dict:
    """Execute packaging/restorelab.spec with stand-ins for PyInstaller's build steps; return the spec's
    namespace and what each step was given."""
    import importlib
    import pkgutil
    import sys
    import types

    import restorelab

    def collect_submodules(pkg, filter=lambda m: True):  # noqa: A002 - PyInstaller's own signature
        mod = importlib.import_module(pkg)
        names = [pkg] + [m.name for m in pkgutil.walk_packages(mod.__path__, pkg + ".")]
        return [n for n in names if filter(n)]

    calls: dict = {}

    class Analysis:
        def __init__(self, scripts, **kw):
            calls["Analysis"] = {"scripts": scripts, **kw}
            self.binaries, self.datas, self.pure, self.scripts = list(binaries), list(datas), [], scripts

    def step(name):
        return lambda *a, **kw: calls.setdefault(name, {"args": a, **kw})

    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_submodules = collect_submodules
    fake = {"PyInstaller": types.ModuleType("PyInstaller"),
            "PyInstaller.utils": types.ModuleType("PyInstaller.utils"), "PyInstaller.utils.hooks": hooks}
    saved = {k: sys.modules.get(k) for k in fake}
    sys.modules.update(fake)
    try:
        ns = {"SPECPATH": str(ROOT / "packaging"), "Analysis": Analysis, "PYZ": step("PYZ"),
              "EXE": step("EXE"), "COLLECT": step("COLLECT")}
        exec(compile((ROOT / "packaging" / "restorelab.spec").read_text(), "restorelab.spec", "exec"), ns)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    assert Path(restorelab.__file__).resolve().parents[1] == ROOT  # the spec bundles this checkout
    return {"ns": ns, "calls": calls}


def _top_level_imports(path: Path) -> set[str]:
    """Modules a file imports when it is imported (module-level statements, not function bodies)."""
    out = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_spec_bundles_what_the_program_loads_and_excludes_nothing_it_imports():
    from restorelab import denoise
    from restorelab.denoise.bfcnn import _NAMES as MODEL_FILES
    from restorelab.resources import sample_path

    binaries = [("libQt6Core.so.6", "x", "BINARY"), ("libQt6Quick.so.6", "x", "BINARY"),
                ("torch/lib/libtorch_cpu.so", "x", "BINARY"), ("torch/test/libfoo.so", "x", "BINARY"),
                ("torch/bin/protoc", "x", "BINARY")]
    datas = [("PySide6/Qt/translations/qtbase_de.qm", "x", "DATA"),
             ("PySide6/Qt/translations/designer_de.qm", "x", "DATA"),
             ("torch/include/ATen/ATen.h", "x", "DATA"),
             ("resources/models/bfcnn_gray.safetensors", "x", "DATA")]
    r = _run_spec(binaries, datas)
    an = r["calls"]["Analysis"]
    # the program: the frozen entry script, which is valid Python
    (entry,) = an["scripts"]
    assert Path(entry) == ROOT / "packaging" / "restorelab_entry.py"
    compile(Path(entry).read_text(), entry, "exec")
    # data: every source exists, and the files the program opens at run time are among them
    srcs = {dest: Path(src) for src, dest in an["datas"]}
    assert all(p.exists() for p in srcs.values()), srcs
    assert (srcs["resources/models"] / MODEL_FILES["gray"]).is_file()
    assert (srcs["resources/models"] / MODEL_FILES["color"]).is_file()
    assert (srcs["resources/samples"] / sample_path().name).is_file()
    assert (srcs["resources/icons"] / "restorelab.png").is_file()
    # the denoiser registry imports its families by name: each must be a hidden import
    assert set(denoise._MODULES) <= set(an["hiddenimports"])  # noqa: SLF001
    assert "restorelab.gui.app" in an["hiddenimports"] and not any(".tests" in m for m in an["hiddenimports"])
    # nothing the application imports at module level is excluded (bench/ and training run outside the bundle)
    excluded = set(an["excludes"])
    for f in (ROOT / "restorelab").rglob("*.py"):
        if "bench" in f.parts or f.name.startswith("train"):
            continue
        for mod in _top_level_imports(f):
            parts = mod.split(".")
            hit = {".".join(parts[: i + 1]) for i in range(len(parts))} & excluded
            assert not hit, (f.relative_to(ROOT), mod)
    # the filter drops the unused Qt/torch parts and keeps what runs
    kept_b = {e[0] for e in r["ns"]["a"].binaries}
    assert kept_b == {"libQt6Core.so.6", "torch/lib/libtorch_cpu.so"}
    kept_d = {e[0] for e in r["ns"]["a"].datas}
    assert kept_d == {"PySide6/Qt/translations/qtbase_de.qm", "resources/models/bfcnn_gray.safetensors"}
    exe = r["calls"]["EXE"]
    assert exe["name"] == "restorelab" and exe["console"] and r["calls"]["COLLECT"]["name"] == "restorelab"
    # the build script is valid bash and the install script exists
    assert subprocess.run(["bash", "-n", str(ROOT / "packaging" / "build.sh")]).returncode == 0
    assert (ROOT / "packaging" / "install.sh").is_file()


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
