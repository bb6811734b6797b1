"""Session files against hostile or unusual input (issue 16: defects 1, 5, 7, 9, 11, 14)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from restorelab.io import ImageError, load_image
from restorelab.session import (
    MaskLayer,
    MethodChoice,
    Session,
    SessionError,
    _sidecars,
    load_session,
    save_session,
    validate_session,
)

ROOT = Path(__file__).resolve().parents[2]


def _session(value: float, shape: tuple[int, ...] = (6, 8, 3), **kw) -> Session:
    img = np.full(shape, value, np.float32)
    return Session(image=img, masks=[MaskLayer("m", np.zeros(shape[:2], bool))], **kw)


def _rewrite(p: Path, edit_doc=None, arrays: dict[str, np.ndarray] | None = None,
             raw_sidecar: bytes | None = None) -> None:
    """Change a saved session's document and/or sidecar, keeping the checksum right."""
    doc = json.loads(p.read_text())
    side = p.with_name(doc["sidecar"]["file"])
    if arrays is not None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        raw_sidecar = buf.getvalue()
    if raw_sidecar is not None:
        side.write_bytes(raw_sidecar)
        doc["sidecar"]["sha256"] = hashlib.sha256(raw_sidecar).hexdigest()
    if edit_doc is not None:
        edit_doc(doc)
    p.write_text(json.dumps(doc))


# --- 1: names are never patterns ----------------------------------------------------------------


def test_session_names_with_pattern_characters_keep_their_own_arrays(tmp_path):
    names = ["shot 1", "shot [1]", "shota", "shot?", "shot*", "shot[a-z]", "shot 1.rlsession.x"]
    for i, n in enumerate(names):
        save_session(tmp_path / f"{n}.rlsession", _session(i / 10))
    for i, n in enumerate(names):  # saving the later ones removed none of the earlier ones' data
        s = load_session(tmp_path / f"{n}.rlsession")
        assert float(s.image[0, 0, 0]) == pytest.approx(i / 10)
    assert len(list(tmp_path.glob("*.npz"))) == len(names)


def test_sidecars_are_matched_literally(tmp_path):
    a = save_session(tmp_path / "a[1].rlsession", _session(0.1))
    save_session(tmp_path / "a1.rlsession", _session(0.2))
    save_session(tmp_path / "a[1].rlsession.rlsession", _session(0.3))
    (tmp_path / "a[1].rlsession.notahash.npz").write_bytes(b"x")
    found = _sidecars(a)
    assert [f.name for f in found] == [json.loads(a.read_text())["sidecar"]["file"]]


# --- 5: paths a session names ---------------------------------------------------------------------


def test_relative_image_path_resolves_against_the_session_folder(tmp_path, monkeypatch):
    d = tmp_path / "work"
    d.mkdir()
    (d / "photo.png").write_bytes(b"the photo")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "photo.png").write_bytes(b"another photo with the same name")
    sha = hashlib.sha256(b"the photo").hexdigest()
    p = save_session(d / "s.rlsession", _session(0.5, image_path="photo.png", image_sha256=sha))
    monkeypatch.chdir(elsewhere)
    s = load_session(p)
    assert s.image_file == d / "photo.png"
    assert not s.image_changed and not s.image_missing and s.warnings == []


@pytest.mark.parametrize("rel", ["../outside.png", "sub/../../outside.png", "link.png"])
def test_relative_image_path_may_not_leave_the_folder(tmp_path, rel):
    d = tmp_path / "work"
    (d / "sub").mkdir(parents=True)
    (tmp_path / "outside.png").write_bytes(b"secret")
    (d / "link.png").symlink_to(tmp_path / "outside.png")
    p = save_session(d / "s.rlsession", _session(0.5, image_path=rel))
    with pytest.raises(SessionError, match="leads out of the session's folder"):
        load_session(p)


def test_absolute_image_path_elsewhere_is_allowed_and_hashed(tmp_path):
    photo = tmp_path / "photos" / "mine.png"
    photo.parent.mkdir()
    photo.write_bytes(b"my photo")
    d = tmp_path / "sessions"
    d.mkdir()
    s0 = Session.for_image(photo, image=np.zeros((4, 4), np.float32))
    p = save_session(d / "s.rlsession", s0)
    assert load_session(p).image_file == photo.resolve() and not load_session(p).image_changed
    photo.write_bytes(b"my photo, edited")
    assert load_session(p).image_changed


def _load_in_thread(path: Path, unblock: Path | None = None) -> tuple[BaseException | None, float]:
    box: dict[str, BaseException] = {}

    def run():
        try:
            load_session(path)
        except BaseException as e:  # noqa: BLE001
            box["e"] = e

    t0 = time.perf_counter()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(5)
    if t.is_alive():
        if unblock is not None:  # let the blocked reader see end-of-file so that the test can end
            fd = os.open(unblock, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        t.join(5)
        pytest.fail("load_session blocked")
    return box.get("e"), time.perf_counter() - t0


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_image_path_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    p = save_session(tmp_path / "s.rlsession", _session(0.5, image_path="pipe.png", image_sha256="0" * 64))
    e, dt = _load_in_thread(p, fifo)
    assert isinstance(e, SessionError) and "named pipe (FIFO)" in str(e) and dt < 2


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_as_sidecar_or_document_is_refused_without_blocking(tmp_path):
    p = save_session(tmp_path / "s.rlsession", _session(0.5))
    side = p.with_name(json.loads(p.read_text())["sidecar"]["file"])
    side.unlink()
    os.mkfifo(side)
    e, _ = _load_in_thread(p, side)
    assert isinstance(e, SessionError) and "FIFO" in str(e)
    doc = tmp_path / "pipe.rlsession"
    os.mkfifo(doc)
    e, _ = _load_in_thread(doc, doc)
    assert isinstance(e, SessionError) and "FIFO" in str(e)


@pytest.mark.parametrize("dev", ["/dev/zero", "/dev/urandom"])
def test_device_image_path_is_refused(tmp_path, dev):
    if not os.path.exists(dev):
        pytest.skip(f"no {dev}")
    p = save_session(tmp_path / "s.rlsession", _session(0.5, image_path=dev, image_sha256="0" * 64))
    e, dt = _load_in_thread(p)
    assert isinstance(e, SessionError) and "character device" in str(e) and dt < 2


def test_folder_image_path_is_refused(tmp_path):
    (tmp_path / "dir.png").mkdir()
    p = save_session(tmp_path / "s.rlsession", _session(0.5, image_path="dir.png"))
    with pytest.raises(SessionError, match="a folder, not a regular file"):
        load_session(p)


# --- 7: bombs ----------------------------------------------------------------------------------------


def test_zip_bomb_is_refused_before_decompressing(tmp_path, monkeypatch):
    """A 4000x4000 float32 working image of zeros compresses to ~60 kB; under a 32 MB budget it is
    refused from the document's declaration, before any member is inflated."""
    monkeypatch.setenv("RESTORELAB_MAX_MEMORY", "32M")
    p = save_session(tmp_path / "s.rlsession", _session(0.5, shape=(8, 8)))
    big = np.zeros((4000, 4000), np.float32)
    buf = io.BytesIO()
    np.savez_compressed(buf, image=big, **{"mask/0": np.zeros((4000, 4000), bool)})
    assert len(buf.getvalue()) < 200_000

    def declare(doc):
        doc["image"]["shape"] = [4000, 4000]
        doc["masks"][0]["mask"]["shape"] = [4000, 4000]

    _rewrite(p, declare, raw_sidecar=buf.getvalue())
    tracemalloc.start()
    try:
        with pytest.raises(SessionError, match="over the budget"):
            load_session(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_member_larger_than_declared_is_refused_before_decompressing(tmp_path):
    p = save_session(tmp_path / "s.rlsession", _session(0.5, shape=(8, 8)))
    buf = io.BytesIO()
    np.savez_compressed(buf, image=np.zeros((3000, 3000), np.float32), **{"mask/0": np.zeros((8, 8), bool)})
    _rewrite(p, raw_sidecar=buf.getvalue())  # the document still says (8, 8)
    tracemalloc.start()
    try:
        with pytest.raises(SessionError, match="corrupt"):
            load_session(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_sidecar_budget_follows_the_declared_image(tmp_path):
    """A mask declared far larger than the 8x8 image is refused from the document alone."""
    p = save_session(tmp_path / "s.rlsession", _session(0.5, shape=(8, 8)))
    _rewrite(p, lambda doc: doc["masks"][0]["mask"].update(shape=[99999, 99999]))
    with pytest.raises(SessionError, match="mask 'mask/0' is"):
        load_session(p)


def _png_header_only(width: int, height: int, depth: int, ctype: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def test_14000_square_16bit_rgba_png_is_refused_within_the_budget(tmp_path, monkeypatch):
    """Under the 200 MP limit, but its decoded samples (1.5 GB) and float32 result (3.1 GB)
    exceed the 2 GiB budget: refused from the header, nothing decoded."""
    f = tmp_path / "big.png"
    f.write_bytes(_png_header_only(14000, 14000, 16, 6))
    monkeypatch.setenv("RESTORELAB_MAX_MEMORY", "2G")
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match="over the budget of 2.0 GiB"):
            load_image(f)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_memory_budget_argument_and_environment(tmp_path, monkeypatch):
    from restorelab.io import save_image

    f = save_image(tmp_path / "a.png", np.zeros((200, 200, 4), np.float32), bit_depth=16)
    with pytest.raises(ImageError, match="memory"):
        load_image(f, max_memory=600_000)  # needs 200*200*(8 + 16) bytes = 0.96 MB plus the file
    monkeypatch.setenv("RESTORELAB_MAX_MEMORY", "600k")
    with pytest.raises(ImageError, match="memory"):
        load_image(f)
    monkeypatch.setenv("RESTORELAB_MAX_MEMORY", "8M")
    assert load_image(f).shape == (200, 200, 4)


# --- 9: concurrent saves --------------------------------------------------------------------------------

_SAVER = """
import sys, numpy as np
from restorelab.session import MaskLayer, Session, save_session
v = float(sys.argv[2])
for i in range(int(sys.argv[3])):
    img = np.full((64, 64, 3), v, np.float32); img[0, 0, 0] = i / 1000
    save_session(sys.argv[1], Session(image=img, masks=[MaskLayer("m", np.zeros((64, 64), bool))]),
                 compress=bool(i % 2))
print("done")
"""


def test_two_processes_saving_one_session_while_it_is_read(tmp_path):
    p = tmp_path / "shared.rlsession"
    save_session(p, _session(0.0, shape=(64, 64, 3)))
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [subprocess.Popen([sys.executable, "-c", _SAVER, str(p), v, "40"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for v in ("0.25", "0.75")]
    errors, reads = [], 0
    try:
        while any(pr.poll() is None for pr in procs):
            try:
                s = load_session(p)
                assert float(s.image[5, 5, 0]) in (0.0, 0.25, 0.75)
                reads += 1
            except SessionError as e:
                errors.append(str(e))
    finally:
        outs = [pr.communicate(timeout=120) for pr in procs]
    assert [pr.returncode for pr in procs] == [0, 0], [o[1][-400:] for o in outs]
    assert errors == [] and reads > 0
    s = load_session(p)
    assert float(s.image[5, 5, 0]) in (0.25, 0.75)
    assert len(_sidecars(p)) == 1
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted([p.name, _sidecars(p)[0].name])


def test_threads_saving_one_session_are_serialised(tmp_path):
    p = tmp_path / "t.rlsession"
    errs: list[BaseException] = []

    def work(v: float) -> None:
        try:
            for _ in range(15):
                save_session(p, _session(v, shape=(32, 32)))
        except BaseException as e:  # noqa: BLE001
            errs.append(e)

    ts = [threading.Thread(target=work, args=(v,)) for v in (0.1, 0.2, 0.3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert errs == []
    assert float(load_session(p).image[0, 0]) in (np.float32(0.1), np.float32(0.2), np.float32(0.3))
    assert len(_sidecars(p)) == 1 and not any(x.name.startswith(".") for x in tmp_path.iterdir())


# --- 11: whole-session validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "choice, needle",
    [
        (MethodChoice("denoise", "tv", {"lam": "abc"}), "'lam' expects float"),
        (MethodChoice("denoise", "tv", {"max_iter": 1e14}), "max_iter = 1e\\+14 is out of range"),
        (MethodChoice("sampler", "sample", {"seed": 10**40}), "seed = .* is out of range"),
        (MethodChoice("sampler", "inpaint", {"max_iter": 0}), "max_iter = 0 is out of range"),
        (MethodChoice("denoise", "tv", {"no_such": 1}), "unknown parameter"),
        (MethodChoice("denoise", "tv", {"accelerate": "yes"}), "'accelerate' expects bool"),
        (MethodChoice("denoise", "tv", {}, sigma=1e9), "sigma = 1e\\+09 .*out of range"),
        (MethodChoice("poisson", "contrast", {"factor": 1e9}), "factor = 1e\\+09 is out of range"),
        (MethodChoice("denoise", "tv", {}, seed=10**40), "seed .* out of range"),
    ],
)
def test_bad_method_parameters_are_refused_when_loading(tmp_path, choice, needle):
    p = save_session(tmp_path / "s.rlsession", _session(0.5, methods=[choice]))
    with pytest.raises(SessionError, match=needle):
        load_session(p)
    h = save_session(tmp_path / "h.rlsession", _session(0.5, history=[choice]))
    with pytest.raises(SessionError, match=needle):
        load_session(h)


def test_valid_and_unknown_methods_pass_validation():
    s = _session(0.5, methods=[MethodChoice("denoise", "tv", {"lam": 0.1, "max_iter": 20}, 0.1, 3),
                               MethodChoice("sampler", "sr", {"factor": 2, "seed": 5}),
                               MethodChoice("denoise", "a_model_not_installed", {"x": 1})])
    validate_session(s)  # unknown methods are left to the application, which says they are missing


# --- 14: NaN / inf --------------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["image", "mask"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_pixels_are_refused(tmp_path, what, bad):
    s = _session(0.5, shape=(6, 8))
    s.masks = [MaskLayer("soft", np.full((6, 8), 0.5, np.float32))]
    p = save_session(tmp_path / "s.rlsession", s)
    arrays = {"image": s.image.copy(), "mask/0": s.masks[0].mask.copy()}
    arrays["image" if what == "image" else "mask/0"][2, 3] = bad
    _rewrite(p, arrays=arrays)
    with pytest.raises(SessionError, match="NaN or infinite"):
        load_session(p)


def test_saving_a_non_finite_image_is_refused(tmp_path):
    s = _session(0.5)
    s.image[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        save_session(tmp_path / "s.rlsession", s)
    assert list(tmp_path.iterdir()) == []


def test_unexpected_zip_member_is_refused(tmp_path):
    p = save_session(tmp_path / "s.rlsession", _session(0.5, shape=(4, 4)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, a in (("image", np.zeros((4, 4), np.float32)), ("mask/0", np.zeros((4, 4), bool)),
                     ("extra", np.zeros(3))):
            b = io.BytesIO()
            np.save(b, a)
            z.writestr(k + ".npy", b.getvalue())
    _rewrite(p, raw_sidecar=buf.getvalue())
    with pytest.raises(SessionError, match="does not declare|unexpected member"):
        load_session(p)


@pytest.mark.parametrize("dtype", [{"a": 1}, ["float32"], 5, None])
def test_array_declaration_of_any_json_type_is_a_session_error(tmp_path, dtype):
    p = save_session(tmp_path / "s.rlsession", _session(0.5))
    _rewrite(p, lambda doc: doc["image"].update(dtype=dtype))
    with pytest.raises(SessionError, match="bad array declaration"):
        load_session(p)
