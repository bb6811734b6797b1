"""Session files: round trip, clear errors, atomic saves, autosave and recovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from restorelab.session import (
    Autosaver,
    ClonePlacement,
    MaskLayer,
    MethodChoice,
    SampleResult,
    Session,
    SessionError,
    load_session,
    save_session,
)


def _full_session(tmp_path: Path, rng: np.random.Generator) -> Session:
    src = tmp_path / "photo.png"
    src.write_bytes(b"\x89PNG fake bytes of the opened photo")
    img = rng.random((24, 32, 3), dtype=np.float32)
    hole = np.zeros((24, 32), bool)
    hole[5:9, 3:12] = True
    soft = (rng.random((24, 32)) * hole).astype(np.float32)
    k = np.stack([img, img * 0.5, img * 0.25])
    return Session.for_image(
        src,
        image=img,
        masks=[MaskLayer("hole", hole), MaskLayer("soft", soft, visible=False)],
        clones=[ClonePlacement("photo", hole, (3, -2), "mixed", source_path=str(src),
                               params={"solver": "cg"})],
        methods=[MethodChoice("denoise", "tv", {"lam": 0.08, "max_iter": 40, "accelerate": True},
                              25 / 255, 11),
                 MethodChoice("sample", "inpaint", {"beta": 0.01, "h0": 0.01}, None, 3)],
        history=[MethodChoice("edit", "clone", {"mode": "mixed"})],
        sampler_results=[SampleResult(samples=list(k), mean=k.mean(0), std=k.std(0),
                                      log=[(1, 1.0, 0.01), (2, 0.5, 0.02), (3, 0.125, 0.03)],
                                      sigma_log=np.array([[1.0, 1.0, 1.0], [0.5, 0.5, np.nan],
                                                          [0.125, 0.25, np.nan]]),
                                      iterations=3, converged=True, message="ok", frames=[(1, img[:4, :4])],
                                      params={"beta": 0.01}, method="inpaint", seed=3)],
        extra={"zoom": 2.0, "tool": "brush", "recent": ["a.png", "b.png"]},
    )


def test_round_trip_same_pixels_masks_parameters(tmp_path, rng):
    s = _full_session(tmp_path, rng)
    p = save_session(tmp_path / "work.rlsession", s)
    t = load_session(p)
    assert np.array_equal(t.image, s.image) and t.image.dtype == np.float32
    assert [m.name for m in t.masks] == ["hole", "soft"] and t.masks[1].visible is False
    for a, b in zip(t.masks, s.masks, strict=True):
        assert np.array_equal(a.mask, b.mask) and a.mask.dtype == b.mask.dtype
    c = t.clones[0]
    assert (c.source_id, c.offset, c.mode, c.params) == ("photo", (3, -2), "mixed", {"solver": "cg"})
    assert np.array_equal(c.mask, s.clones[0].mask)
    assert t.methods == s.methods and t.history == s.history
    r, r0 = t.sampler_results[0], s.sampler_results[0]
    assert np.array_equal(np.stack(r.samples), np.stack(r0.samples))
    assert np.array_equal(r.std, r0.std)
    assert np.array_equal(r.sigma_log, r0.sigma_log, equal_nan=True) and r.log == r0.log and r.seed == 3
    assert (r.method, r.iterations, r.converged, r.message) == ("inpaint", 3, True, "ok")
    assert r.params == {"beta": 0.01}
    assert r.frames[0][0] == 1 and np.array_equal(r.frames[0][1], r0.frames[0][1])
    assert t.extra == s.extra and t.session_id == s.session_id
    assert not t.image_changed and not t.image_missing and t.warnings == []
    doc = json.loads(p.read_text())
    assert doc["format"] == "restorelab-session" and doc["version"] == 1
    # the sidecar is a plain npz readable without pickle
    side = np.load(tmp_path / doc["sidecar"]["file"], allow_pickle=False)
    assert "image" in side.files


def test_newer_version_is_a_clear_error(tmp_path, rng):
    p = save_session(tmp_path / "w.rlsession", _full_session(tmp_path, rng))
    doc = json.loads(p.read_text())
    doc["version"] = 2
    p.write_text(json.dumps(doc))
    with pytest.raises(SessionError, match="newer restorelab"):
        load_session(p)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "not-session", "bad-field"])
def test_damaged_json_is_a_clear_error(tmp_path, rng, damage):
    p = save_session(tmp_path / "w.rlsession", _full_session(tmp_path, rng))
    text = p.read_text()
    if damage == "truncate":
        p.write_text(text[: len(text) // 2])
    elif damage == "garbage":
        p.write_bytes(b"\xff\xfe\x00garbage")
    elif damage == "not-session":
        p.write_text(json.dumps({"format": "something-else", "version": 1}))
    else:
        doc = json.loads(text)
        doc["clones"][0]["offset"] = ["a", None]
        p.write_text(json.dumps(doc))
    with pytest.raises(SessionError) as e:
        load_session(p)
    assert "w.rlsession" in str(e.value)


def test_missing_or_corrupt_sidecar(tmp_path, rng):
    p = save_session(tmp_path / "w.rlsession", _full_session(tmp_path, rng))
    side = tmp_path / json.loads(p.read_text())["sidecar"]["file"]
    data = bytearray(side.read_bytes())
    data[len(data) // 2] ^= 0x10
    side.write_bytes(bytes(data))
    with pytest.raises(SessionError, match="corrupt"):
        load_session(p)
    side.unlink()
    with pytest.raises(SessionError, match="missing"):
        load_session(p)


def test_changed_or_missing_image_is_a_warning_not_an_error(tmp_path, rng):
    s = _full_session(tmp_path, rng)
    p = save_session(tmp_path / "w.rlsession", s)
    Path(s.image_path).write_bytes(b"edited elsewhere")
    t = load_session(p)
    assert t.image_changed and not t.image_missing and "changed" in t.warnings[0]
    assert np.array_equal(t.image, s.image)
    Path(s.image_path).unlink()
    t = load_session(p)
    assert t.image_missing and "missing" in t.warnings[0]


def test_no_pickle_and_plain_parameters(tmp_path):
    with pytest.raises(TypeError):
        save_session(tmp_path / "x.rlsession", Session(image=np.array([[object()]], dtype=object)))
    with pytest.raises(TypeError):
        save_session(tmp_path / "x.rlsession", Session(methods=[MethodChoice("d", "tv", {"f": object()})]))
    with pytest.raises(ValueError):
        save_session(tmp_path / "x.rlsession", Session(methods=[MethodChoice("d", "tv", {"w": np.nan})]))
    assert not list(tmp_path.iterdir())


def test_failed_save_leaves_previous_session(tmp_path, rng, monkeypatch):
    s = _full_session(tmp_path, rng)
    p = save_session(tmp_path / "w.rlsession", s)
    before = sorted(x.name for x in tmp_path.iterdir())
    s2 = _full_session(tmp_path, np.random.default_rng(5))
    real = os.replace
    calls = []

    def flaky(a, b):  # the sidecar rename succeeds, the document rename fails
        calls.append(b)
        if str(b).endswith(".rlsession"):
            raise OSError(28, "No space left on device (injected)")
        return real(a, b)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OSError):
        save_session(p, s2)
    monkeypatch.setattr(os, "replace", real)
    t = load_session(p)
    assert np.array_equal(t.image, s.image)
    assert not [x for x in tmp_path.iterdir() if x.name.startswith(".")]
    # the next save succeeds and removes the orphan sidecar of the failed one
    save_session(p, s2)
    assert np.array_equal(load_session(p).image, s2.image)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    assert set(before) - {x.name for x in tmp_path.iterdir()}  # old sidecar replaced


def test_killed_mid_save_leaves_a_complete_session(tmp_path):
    """SIGKILL a child that saves in a loop; the session on disk always loads."""
    from restorelab.bench.faults import scenario_kill_mid_save

    res = scenario_kill_mid_save("session", trials=3, seed=1)
    assert res.ok, res.observed


def test_autosaver_interval_recover_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTORELAB_NO_AUTOSAVE", "0")
    a = Autosaver(tmp_path, interval_s=3600)
    s = Session(image=np.zeros((4, 4), np.float32), extra={"n": 1})
    p = a.maybe_save(s)
    assert p is not None and p.exists()
    s.extra["n"] = 2
    assert a.maybe_save(s) is None  # not due yet
    assert load_session(p).extra["n"] == 1
    assert a.maybe_save(s, force=True) == p  # e.g. after a completed job
    assert load_session(p).extra["n"] == 2
    assert a.recover() == []  # our own process is alive: nothing to recover
    # an autosave from a process that died
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    pid = int(dead.stdout)
    time.sleep(0.05)
    orphan = tmp_path / p.name.replace(f"autosave-{os.getpid()}-", f"autosave-{pid}-")
    save_session(orphan, s)
    recs = a.recover()
    assert [r.pid for r in recs] == [pid]
    assert recs[0].load().extra["n"] == 2
    a.clear()
    assert not p.exists() and orphan.exists()
    a.discard(recs[0])
    assert not list(tmp_path.iterdir())


def test_autosave_disabled_by_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTORELAB_NO_AUTOSAVE", "1")
    a = Autosaver(tmp_path, interval_s=0)
    assert a.maybe_save(Session(), force=True) is None
    assert a.recover() == [] and not list(tmp_path.iterdir())
