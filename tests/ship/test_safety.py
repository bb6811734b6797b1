"""Atomic writes, free-space checks, the out-of-memory fallback and tiling."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter

from restorelab.jobs import Progress, run_job
from restorelab.safety import (
    OOM_KEY,
    OOMFallbackFailed,
    atomic_write,
    atomic_write_bytes,
    check_free_space,
    cleanup_stale_temps,
    is_oom,
    oom_fallback_job,
    run_with_oom_fallback,
    stale_temps,
    temp_name,
    tiled_apply,
)

DEAD_PID = 4_194_304 + 17  # above Linux's largest pid (2**22): never a running process


def test_atomic_write_keeps_previous_content_on_error(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_bytes(p, b"old")
    with pytest.raises(RuntimeError), atomic_write(p) as f:
        f.write(b"half of the new cont")
        raise RuntimeError("killed in the middle")
    assert p.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.txt"]
    atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"new"


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    p = tmp_path / "a.bin"
    stale = temp_name(p, pid=DEAD_PID, rand="0123abcd")
    assert stale.name == f".a.bin.{DEAD_PID}.0123abcd.tmp"
    stale.write_bytes(b"partial")
    legacy = tmp_path / f".a.bin.rl-tmp-{DEAD_PID}-xyz"  # the older writer's naming, pid known
    legacy.write_bytes(b"partial")
    mine = temp_name(p, rand="00000000")  # a write of ours in progress
    mine.write_bytes(b"partial")
    other_live = temp_name(p, pid=os.getppid(), rand="11111111")  # another running writer
    other_live.write_bytes(b"partial")
    side = temp_name(tmp_path / "a.bin.0123456789abcdef.npz", pid=DEAD_PID, rand="22222222")  # a sidecar's
    side.write_bytes(b"partial")
    unrelated = tmp_path / ".a.bin.bak"
    unrelated.write_bytes(b"keep")
    assert stale_temps(p) == sorted([stale, legacy])
    assert set(stale_temps(p, include_live=True)) == {stale, legacy, mine, other_live}
    assert cleanup_stale_temps(p) == 2
    assert not stale.exists() and not legacy.exists()
    assert mine.exists() and other_live.exists() and side.exists() and unrelated.exists()
    assert cleanup_stale_temps(p, family=True) == 1
    assert not side.exists() and mine.exists() and unrelated.exists()


def test_names_are_not_patterns(tmp_path):
    p = tmp_path / "shot [1].bin"
    look_alike = temp_name(tmp_path / "shot 1.bin", pid=DEAD_PID, rand="33333333")
    look_alike.write_bytes(b"partial")
    assert stale_temps(p, family=True) == []
    atomic_write_bytes(p, b"x")
    assert look_alike.exists()


def test_next_write_removes_a_dead_writers_temp(tmp_path):
    p = tmp_path / "out.tif"
    stale = tmp_path / f".out.tif.{DEAD_PID}.deadbeef.tmp"
    stale.write_bytes(b"x" * 1000)
    live = tmp_path / f".out.tif.{os.getppid()}.cafe0000.tmp"
    live.write_bytes(b"x")
    atomic_write_bytes(p, b"data")
    assert sorted(os.listdir(tmp_path)) == sorted(["out.tif", live.name])


def _umask_now() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc to read the umask")
def test_writer_never_touches_the_process_umask(tmp_path, monkeypatch):
    def no_umask(*a):
        raise AssertionError("os.umask is process-wide; a writer on a thread must not flip it")

    monkeypatch.setattr(os, "umask", no_umask)
    for mode, data in (("wb", b"abc"), ("w", "abc")):
        p = tmp_path / f"f_{mode}"
        with atomic_write(p, mode) as f:
            f.write(data)
        assert p.stat().st_mode & 0o777 == 0o666 & ~_umask_now()


def test_no_overwrite_is_atomic_and_names_a_dangling_link(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_bytes(p, b"one", overwrite=False)
    with pytest.raises(FileExistsError, match="exists"):
        atomic_write_bytes(p, b"two", overwrite=False)
    assert p.read_bytes() == b"one"
    link = tmp_path / "l.txt"
    link.symlink_to(tmp_path / "missing.txt")
    with pytest.raises(FileExistsError, match="symbolic link to .*missing.txt, which does not exist"):
        atomic_write_bytes(link, b"x", overwrite=False)
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "l.txt"]


def test_long_names(tmp_path):
    ok = tmp_path / ("n" * 250)  # fits, but ".NAME.<pid>.<rand>.tmp" would not: the temp name is cut
    atomic_write_bytes(ok, b"x")
    assert ok.read_bytes() == b"x" and os.listdir(tmp_path) == [ok.name]
    with pytest.raises(OSError) as e:
        atomic_write_bytes(tmp_path / ("n" * 256), b"x")
    assert e.value.errno == errno.ENAMETOOLONG and "255" in str(e.value)
    stale = temp_name(ok, pid=DEAD_PID)
    assert len(stale.name.encode()) <= 255
    stale.write_bytes(b"x")
    assert stale_temps(ok) == [stale]


def test_check_free_space(tmp_path):
    check_free_space(tmp_path, 1)
    with pytest.raises(OSError) as e:
        check_free_space(tmp_path, 1 << 60)
    assert e.value.errno == errno.ENOSPC and "free" in str(e.value)


def test_is_oom():
    assert is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert is_oom(RuntimeError("CUDA error: out of memory"))
    assert is_oom(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert is_oom(type("OutOfMemoryError", (Exception,), {})("MPS backend"))  # known by name
    assert is_oom(MemoryError())
    assert not is_oom(RuntimeError("shape mismatch"))
    assert not is_oom(ValueError("out of memory"))  # only RuntimeError-like errors


def _attempt(tag, fail_at=None, exc=None, log=None):
    try:
        for i in range(3):
            if fail_at == i:
                raise exc if exc is not None else torch.cuda.OutOfMemoryError("CUDA out of memory. 2 GiB")
            yield Progress(i + 1, 3, message=tag)
        return tag
    finally:
        if log is not None:
            log.append(tag)


def test_oom_fallback_job_retries_on_the_cpu():
    made, events = [], []

    def make(dev):
        made.append(dev)
        return _attempt(dev, fail_at=1 if dev == "cuda" else None)

    assert run_job(oom_fallback_job(make, "cuda"), on_progress=events.append) == "cpu"
    assert made == ["cuda", "cpu"]
    notes = [e.data[OOM_KEY] for e in events if OOM_KEY in e.data]
    assert len(notes) == 1 and "retrying on the CPU" in notes[0] and "2 GiB" in notes[0]
    assert [e.message for e in events if OOM_KEY not in e.data] == ["cuda", "cpu", "cpu", "cpu"]


def test_oom_fallback_job_on_cpu_runs_once_and_errors_propagate():
    made = []

    def make(dev):
        made.append(dev)
        return _attempt(dev, fail_at=0, exc=MemoryError())

    with pytest.raises(MemoryError):
        run_job(oom_fallback_job(make, "cpu"))
    assert made == ["cpu"]
    with pytest.raises(ValueError, match="bad"):
        run_job(oom_fallback_job(lambda d: _attempt(d, 0, ValueError("bad")), "cuda"))
    with pytest.raises(OOMFallbackFailed, match="on the CPU"):
        run_job(oom_fallback_job(lambda d: _attempt(d, 2), "cuda"))


def test_oom_fallback_job_tiles_then_cpu_and_cancel_closes_the_attempt():
    closed = []
    tiles = lambda: _attempt("tiles", 0, RuntimeError("CUDA error: out of memory"))  # noqa: E731
    g = oom_fallback_job(lambda d: _attempt(d, 1 if d == "cuda" else None, log=closed), "cuda", tiled=tiles)
    assert next(g).message == "cuda"
    assert "in tiles" in next(g).data[OOM_KEY]
    assert "on the CPU" in next(g).data[OOM_KEY]
    assert next(g).message == "cpu"
    g.close()
    assert closed == ["cuda", "cpu"]


def test_oom_fallback_order_and_messages():
    calls, msgs = [], []

    def gpu(x):
        calls.append("gpu")
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    def tiles(x):
        calls.append("tiles")
        raise RuntimeError("CUDA out of memory again")

    def cpu(x):
        calls.append("cpu")
        return x + 1

    assert run_with_oom_fallback(gpu, 1, tiled=tiles, cpu=cpu, on_message=msgs.append) == 2
    assert calls == ["gpu", "tiles", "cpu"]
    assert "in tiles" in msgs[0] and "on the CPU" in msgs[1]
    with pytest.raises(OOMFallbackFailed, match="out of memory"):
        run_with_oom_fallback(gpu, 1, tiled=tiles, on_message=msgs.append)


def test_other_errors_are_not_swallowed():
    def bad(x):
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        run_with_oom_fallback(bad, 1, cpu=lambda x: x)


def test_tiled_apply_equals_full_image_for_local_filter(rng):
    img = rng.random((150, 203, 3)).astype(np.float32)

    def f(a):
        return uniform_filter(a, size=(7, 7, 1), mode="reflect")

    full = f(img)
    tiled = tiled_apply(f, img, tile=64, overlap=32)  # support 3 px < overlap/4 = 8 px
    assert np.abs(tiled - full).max() < 1e-5
    # a (H, W) image and a tile larger than the image
    g = img[..., 0]
    assert np.allclose(tiled_apply(lambda a: a * 2, g, tile=512), g * 2)
    with pytest.raises(ValueError):
        tiled_apply(f, img, tile=4)


def test_free_device_cache_never_collects_garbage_off_the_main_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full collection on a worker thread finalises Qt wrappers (an old window in a
    reference cycle) away from their thread, which deadlocked the GUI's OOM retry; only the
    main thread collects."""
    import gc
    import threading

    from restorelab import safety

    calls: list[str] = []
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append(threading.current_thread().name) or 0)
    t = threading.Thread(target=safety.free_device_cache, name="worker")
    t.start()
    t.join(10)
    assert calls == []
    safety.free_device_cache()
    assert calls == [threading.main_thread().name]
