"""Model file headers: every configuration value has a declared range and the network's size
is estimated before it is built (issue 16, defect 6); saves go through the atomic writer."""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import pytest
import torch

from restorelab.models import build_model, load_model, save_model
from restorelab.models.nets import MAX_PARAMETERS, check_config, parameter_count
from restorelab.models.weights import FORMAT


def _header_file(tmp_path: Path, **md: str) -> Path:
    from safetensors.torch import save_file

    p = tmp_path / "m.safetensors"
    meta = {"format": FORMAT, "arch": "bfcnn", "channels": "1", "depth": "3", "width": "4", **md}
    save_file({"layers.0.conv.weight": torch.zeros(4, 1, 3, 3)}, str(p), metadata=meta)
    return p


@pytest.mark.parametrize(
    "md, needle",
    [
        ({"width": "8000"}, r"width = 8000 is out of range \[1, 1024\]"),
        ({"depth": "100000000"}, r"depth = 1e\+08 is out of range \[3, 256\]"),
        ({"width": "700", "depth": "200"}, r"parameters .* over the limit"),
        ({"arch": "bfunet", "depth": "8", "width": "512"}, r"parameters .* over the limit"),
        ({"arch": "bfunet", "depth": "100"}, r"depth = 100 is out of range \[1, 8\]"),
        ({"channels": "2"}, r"channels must be 1 or 3"),
        ({"channels": "0"}, r"channels = 0 is out of range"),
        ({"width": "abc"}, r"width = 'abc' is not a number"),
        ({"width": "4.5"}, r"not an integer"),
        ({"width": "1e400"}, r"width"),
        ({"sigma_max": "1e9"}, r"sigma_max = 1e\+09 is out of range \[0, 255\]"),
        ({"steps": "-3"}, r"steps = -3 is out of range"),
    ],
)
def test_header_values_are_checked_before_the_network_is_built(tmp_path, md, needle):
    p = _header_file(tmp_path, **md)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ValueError, match=needle):
            load_model(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 2.0 and peak < 16 << 20


@pytest.mark.parametrize("cfg", [("bfcnn", 1, 3, 4), ("bfcnn", 3, 20, 64), ("bfunet", 1, 1, 4),
                                 ("bfunet", 3, 3, 32), ("bfunet", 1, 4, 8)])
def test_parameter_count_is_the_state_size(cfg):
    net = build_model(*cfg)
    assert parameter_count(*cfg) == sum(v.numel() for v in net.state_dict().values())


def test_build_model_refuses_what_the_limit_forbids():
    with pytest.raises(ValueError, match="over the limit"):
        build_model("bfcnn", 3, 256, 1024)
    assert parameter_count("bfcnn", 3, 256, 1024) > MAX_PARAMETERS
    assert check_config("bfcnn", 1, 20, 64) == (1, 20, 64)


def test_save_removes_a_killed_writers_temp_and_leaves_no_other(tmp_path):
    stale = tmp_path / ".m.safetensors.4194399.0123abcd.tmp"  # pid above Linux's pid_max: dead
    stale.write_bytes(b"half a model")
    p = save_model(tmp_path / "m.safetensors", build_model("bfcnn", 1, 3, 4))
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]
    net, _ = load_model(p)
    assert not net.training


def test_failed_save_keeps_the_previous_model(tmp_path, monkeypatch):
    import errno

    p = save_model(tmp_path / "m.safetensors", build_model("bfcnn", 1, 3, 4))
    before = p.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device (simulated)")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        save_model(p, build_model("bfcnn", 1, 3, 8))
    assert p.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["m.safetensors"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_a_fifo_is_not_a_model(tmp_path):
    f = tmp_path / "pipe.safetensors"
    os.mkfifo(f)
    with pytest.raises(ValueError, match="not a regular file"):
        load_model(f)
