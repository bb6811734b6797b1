"""Model files: round trip, validation of names/shapes/dtypes, corrupt files, no pickle."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from restorelab.models import build_model, load_model, read_metadata, save_model


def test_round_trip(tmp_path: Path) -> None:
    net = build_model("bfunet", 3, 2, 4)
    p = save_model(tmp_path / "m.safetensors", net, {"steps": 7, "sigma_max": 100})
    m2, md = load_model(p)
    assert md["arch"] == "bfunet" and md["channels"] == "3" and md["steps"] == "7"
    assert not m2.training
    for (k, v), (k2, v2) in zip(net.state_dict().items(), m2.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)


def test_wrong_shape_is_a_clear_error(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    net = build_model("bfcnn", 1, 4, 8)
    p = save_model(tmp_path / "m.safetensors", net)
    md = read_metadata(p)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    k0 = "layers.1.conv.weight"
    state[k0] = torch.zeros(8, 8, 5, 5)
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad), metadata=md)
    with pytest.raises(ValueError, match=r"bad\.safetensors.*shape"):
        load_model(bad)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state[k0] = state[k0].double()
    save_file(state, str(bad), metadata=md)
    with pytest.raises(ValueError, match="dtype"):
        load_model(bad)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    del state[k0]
    save_file(state, str(bad), metadata=md)
    with pytest.raises(ValueError, match="names"):
        load_model(bad)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state[k0][0, 0, 0, 0] = float("nan")
    save_file(state, str(bad), metadata=md)
    with pytest.raises(ValueError, match="NaN"):
        load_model(bad)
    # header says depth 5 but the tensors are for depth 4
    save_file(net.state_dict(), str(bad), metadata={**md, "depth": "5"})
    with pytest.raises(ValueError, match="names"):
        load_model(bad)


def test_corrupt_and_foreign_files(tmp_path: Path) -> None:
    net = build_model("bfcnn", 1, 3, 4)
    good = save_model(tmp_path / "m.safetensors", net).read_bytes()
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="trunc.safetensors"):
        load_model(trunc)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x80\x04\x95not a model at all" * 10)
    with pytest.raises(ValueError, match="junk.safetensors"):
        load_model(junk)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign))
    with pytest.raises(ValueError, match="not a restorelab"):
        load_model(foreign)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.safetensors")


def test_save_refuses_folded(tmp_path: Path) -> None:
    net = build_model("bfcnn", 1, 3, 4).eval().fold()
    with pytest.raises(ValueError):
        save_model(tmp_path / "f.safetensors", net)


def test_shipped_weights_load_if_present() -> None:
    from restorelab.resources import models_dir

    files = sorted(models_dir().glob("bfcnn_*.safetensors"))
    if not files:
        pytest.skip("no shipped bias-free weights")
    for f in files:
        m, md = load_model(f)
        y = torch.rand(1, m.channels, 32, 32)
        with torch.no_grad():
            out = m.denoise(y)
        assert out.shape == y.shape and torch.isfinite(out).all()
        assert float(md["sigma_max"]) > 0 and int(md["steps"]) > 0
