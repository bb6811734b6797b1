"""Atomic writes, free-space checks, the out-of-memory fallback and tiling."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter

from restorelab.safety import (
    OOMFallbackFailed,
    atomic_write,
    atomic_write_bytes,
    check_free_space,
    cleanup_stale_temps,
    is_out_of_memory,
    run_with_oom_fallback,
    tiled_apply,
)


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
    stale = tmp_path / ".a.bin.rl-tmp-999999999-xyz"  # no such pid
    stale.write_bytes(b"partial")
    mine = tmp_path / f".a.bin.rl-tmp-{os.getpid()}-abc"  # a write of ours in progress
    mine.write_bytes(b"partial")
    side = tmp_path / ".a.bin.0123456789abcdef.npz.rl-tmp-999999999-q"  # of a session's sidecar
    side.write_bytes(b"partial")
    assert cleanup_stale_temps(p) == 1
    assert not stale.exists() and mine.exists() and side.exists()
    assert cleanup_stale_temps(p, family=True) == 1
    assert not side.exists() and mine.exists()


def test_check_free_space(tmp_path):
    check_free_space(tmp_path, 1)
    with pytest.raises(OSError) as e:
        check_free_space(tmp_path, 1 << 60)
    assert e.value.errno == errno.ENOSPC and "free" in str(e.value)


def test_is_out_of_memory():
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))  # only RuntimeError-like errors


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
