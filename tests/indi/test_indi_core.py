"""InDI core: the update rule, the N = 1 case, tiling, degradations, weights, training batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from restorelab.indi import degrade
from restorelab.indi.net import build_indi
from restorelab.indi.restore import indi_times, restore, restore_job
from restorelab.indi.weights import load_indi, save_indi
from restorelab.jobs import Cancelled, CancelToken, run_job


class ToyF(torch.nn.Module):
    """F(x_t, t) = a fixed image x (ignores its input): the update must follow the straight line."""

    multiple = 1

    def __init__(self, x: np.ndarray) -> None:
        super().__init__()
        self.x = torch.from_numpy(x).permute(2, 0, 1)[None]

    def forward(self, z: torch.Tensor, t: float) -> torch.Tensor:
        h, w = z.shape[-2:]
        return self.x[..., :h, :w].expand(z.shape[0], -1, -1, -1).to(z.dtype)

    def receptive_radius(self) -> int:
        return 0


def _net(seed: int) -> torch.nn.Module:
    """A small random InDI network whose last layer is not zero (so it is not the identity)."""
    torch.manual_seed(seed)
    net = build_indi(3, 2, 4)
    with torch.no_grad():
        net.out.conv.weight.normal_(0.0, 0.1)
    return net.eval()


def _img(seed: int, h: int = 24, w: int = 28) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def test_steps_follow_the_straight_line_for_a_constant_estimate() -> None:
    x, y = _img(0), _img(1)
    res = restore(y, "blur", 5, model=ToyF(x), tile=0, eps=0.0, clip=False)
    assert res.times == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2, 0.0])
    for t, frame in zip(res.times, res.trajectory, strict=True):
        np.testing.assert_allclose(frame, (1 - t) * x + t * y, atol=1e-5)
    np.testing.assert_allclose(res.image, x, atol=1e-5)


def test_noise_start_stays_on_the_line_to_the_noisy_start() -> None:
    x, y = _img(2), _img(3)
    eps = 0.05
    res = restore(y, "blur", 4, model=ToyF(x), tile=0, eps=eps, seed=7, clip=False)
    x1 = res.trajectory[0]
    assert np.abs(x1 - y).max() > 0.01  # the start carries ε η
    for t, frame in zip(res.times, res.trajectory, strict=True):
        np.testing.assert_allclose(frame, (1 - t) * x + t * x1, atol=1e-5)


def test_one_step_is_the_network_at_t_equal_one() -> None:
    net = _net(0)
    y = _img(4, 20, 20)
    res = restore(y, "jpeg", 1, model=net, tile=0, eps=0.0, clip=False)
    with torch.no_grad():
        f = net(torch.from_numpy(y).permute(2, 0, 1)[None], 1.0)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(res.image, f, atol=1e-6)
    assert np.abs(res.image - y).max() > 1e-3  # the network is not the identity here


def test_a_fresh_network_is_the_identity() -> None:
    y = _img(12)
    res = restore(y, "blur", 3, model=build_indi(3, 2, 4).eval(), tile=0, eps=0.0)
    np.testing.assert_allclose(res.image, y, atol=1e-6)


def test_time_changes_the_network_output() -> None:
    net = _net(0)
    z = torch.from_numpy(_img(5, 16, 16)).permute(2, 0, 1)[None]
    with torch.no_grad():
        assert (net(z, 1.0) - net(z, 0.3)).abs().max() > 1e-4


def test_tiled_steps_equal_the_whole_image() -> None:
    net = _net(1)
    y = _img(6, 45, 50)
    whole = restore(y, "blur", 2, model=net, tile=0, seed=3)
    tiled = restore(y, "blur", 2, model=net, tile=8, seed=3)
    np.testing.assert_allclose(tiled.image, whole.image, atol=1e-5)


def test_restoration_is_deterministic_under_a_seed_and_reports_each_step() -> None:
    net = _net(2)
    y = _img(7)
    events = []
    a = run_job(restore_job(y, "sr4", 3, model=net, seed=11, eps=0.02, tile=0), on_progress=events.append)
    b = restore(y, "sr4", 3, model=net, seed=11, eps=0.02, tile=0)
    c = restore(y, "sr4", 3, model=net, seed=12, eps=0.02, tile=0)
    np.testing.assert_array_equal(a.image, b.image)
    assert np.abs(a.image - c.image).max() > 1e-4
    previews = [e for e in events if e.preview is not None]
    assert [e.data["t"] for e in previews] == pytest.approx(indi_times(3)[1:])
    np.testing.assert_array_equal(previews[-1].preview, a.image)


def test_cancel_between_steps_returns_nothing() -> None:
    net = build_indi(3, 2, 4).eval()
    tok = CancelToken()
    seen = []

    def on(ev: object) -> None:
        seen.append(ev)
        if len(seen) == 2:
            tok.cancel()

    with pytest.raises(Cancelled):
        run_job(restore_job(_img(8), "blur", 5, model=net, tile=0), cancel=tok, on_progress=on)
    assert len(seen) == 2


def test_gray_input_comes_back_gray() -> None:
    y = _img(9)[:, :, 0]
    res = restore(y, "blur", 2, model=ToyF(np.repeat(y[:, :, None], 3, 2)), tile=0, eps=0.0)
    assert res.image.shape == y.shape
    np.testing.assert_allclose(res.image, y, atol=1e-6)


@pytest.mark.parametrize("kind", degrade.DEGRADATIONS)
def test_degradations_are_deterministic_under_a_seed(kind: str) -> None:
    x = _img(10, 40, 44)
    a, ia = degrade.degrade(x, kind, 5)
    b, _ = degrade.degrade(x, kind, 5)
    np.testing.assert_array_equal(a, b)
    assert a.shape == x.shape and a.dtype == np.float32
    assert np.abs(a - x).mean() > 1e-3  # it does degrade
    if kind != "sr4":  # sr4 has no random parameter
        c, ic = degrade.degrade(x, kind, 6)
        assert not np.array_equal(a, c) or ia != ic


def test_kernels_are_normalised_and_jpeg_quality_is_in_range() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        k = degrade.random_kernel(rng)
        assert k.shape == (degrade.KERNEL_SIZE, degrade.KERNEL_SIZE)
        assert k.sum() == pytest.approx(1.0, abs=1e-5) and k.min() >= 0
        q = degrade.draw("jpeg", rng)["quality"]
        assert degrade.JPEG_QUALITY[0] <= q <= degrade.JPEG_QUALITY[1]


def test_blur_of_a_constant_is_the_constant_and_jpeg_is_a_real_codec(astronaut_small: np.ndarray) -> None:
    c = np.full((32, 32, 3), 0.4, np.float32)
    np.testing.assert_allclose(degrade.blur(c, degrade.gaussian_kernel(2, 1, 0.3)), c, atol=1e-6)
    x = astronaut_small
    lo, hi = degrade.jpeg(x, 10), degrade.jpeg(x, 95)
    err = lambda a: float(np.mean((a - x) ** 2))  # noqa: E731
    assert err(lo) > 2 * err(hi) > 0
    assert degrade.downsample4(x).shape == (24, 24, 3)


def test_weights_round_trip(tmp_path: Path) -> None:
    net = _net(3)
    p = save_indi(tmp_path / "m.safetensors", net, "sr4", 0.02, {"steps": 5})
    back, md = load_indi(p, degradation="sr4")
    assert md["degradation"] == "sr4" and float(md["eps"]) == 0.02
    z = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(back(z, 0.5), net(z, 0.5), atol=1e-5, rtol=1e-4)


def test_weights_for_another_degradation_fail_clearly(tmp_path: Path) -> None:
    p = save_indi(tmp_path / "m.safetensors", build_indi(3, 2, 4), "blur", 0.01)
    with pytest.raises(ValueError, match="restores 'blur', not 'jpeg'"):
        load_indi(p, degradation="jpeg")


def test_corrupt_weights_fail_clearly(tmp_path: Path) -> None:
    p = save_indi(tmp_path / "m.safetensors", build_indi(3, 2, 4), "blur", 0.01)
    data = bytearray(p.read_bytes())
    bad = tmp_path / "truncated.safetensors"
    bad.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ValueError, match="truncated.safetensors"):
        load_indi(bad)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load_indi(junk)


def test_mismatched_weights_fail_clearly(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from restorelab.models.nets import build_model
    from restorelab.models.weights import save_model

    den = save_model(tmp_path / "den.safetensors", build_model("bfunet", 3, 2, 4))
    with pytest.raises(ValueError, match="not an InDI model"):
        load_indi(den)
    p = save_indi(tmp_path / "m.safetensors", build_indi(3, 2, 4), "jpeg", 0.01)
    from safetensors import safe_open

    with safe_open(str(p), framework="pt") as f:
        md = f.metadata()
    state = load_file(str(p))
    md2 = {**md, "width": "8"}  # a header that does not describe the tensors
    save_file(state, str(tmp_path / "w.safetensors"), metadata=md2)
    with pytest.raises(ValueError, match="has shape"):
        load_indi(tmp_path / "w.safetensors")
    state["inc.conv.weight"] = state["inc.conv.weight"][:, :3].contiguous()  # no time channels
    save_file(state, str(tmp_path / "s.safetensors"), metadata=md)
    with pytest.raises(ValueError, match="inc.conv.weight has shape"):
        load_indi(tmp_path / "s.safetensors")


def test_training_batch_lies_on_the_path() -> None:
    from restorelab.indi.train import IndiTrainConfig, indi_batch
    from restorelab.models.train import PatchSampler

    imgs = [(np.random.default_rng(i).random((3, 40, 40)) * 255).astype(np.uint8) for i in range(2)]
    cfg = IndiTrainConfig(data=[], out="", batch=4, patch=16, degradation="jpeg", eps=0.0)
    s = PatchSampler(imgs, 16, True, np.random.default_rng(0))
    xt, t, x = indi_batch(s, cfg, np.random.default_rng(1), torch.Generator().manual_seed(1))
    assert xt.shape == x.shape == (4, 3, 16, 16) and t.shape == (4,)
    assert float(t.min()) > 0 and float(t.max()) <= 1
    # with ε = 0, x_t = (1 − t) x + t JPEG_q(x), the qualities drawn in order from the same generator
    r = np.random.default_rng(1)
    for b in range(4):
        xb = x[b].permute(1, 2, 0).numpy()
        y = degrade.jpeg(xb, degrade.draw("jpeg", r)["quality"])
        want = (1 - float(t[b])) * xb + float(t[b]) * y
        np.testing.assert_allclose(xt[b].permute(1, 2, 0).numpy(), want, atol=1e-5)


def test_t_one_trains_that_fraction_of_the_batch_at_t_equal_one() -> None:
    """``t_one`` puts a fraction of each batch at the N = 1 point; at 0 the path times are
    the U(0, 1] draws of the default recipe, unchanged; out of [0, 1] is refused."""
    from restorelab.indi.train import IndiTrainConfig, indi_batch, train_indi_job
    from restorelab.models.train import PatchSampler

    imgs = [(np.random.default_rng(i).random((3, 40, 40)) * 255).astype(np.uint8) for i in range(2)]

    def times(t_one: float) -> torch.Tensor:
        cfg = IndiTrainConfig(data=[], out="", batch=400, patch=8, degradation="jpeg", eps=0.0, t_one=t_one)
        s = PatchSampler(imgs, 8, True, np.random.default_rng(0))
        return indi_batch(s, cfg, np.random.default_rng(1), torch.Generator().manual_seed(1))[1]

    t0, t_half, t1 = times(0.0), times(0.5), times(1.0)
    assert float((t0 == 1).float().mean()) < 0.01
    assert 0.4 < float((t_half == 1).float().mean()) < 0.6
    assert bool((t1 == 1).all())
    kept = t_half < 1  # the others keep their U(0, 1] draw
    torch.testing.assert_close(t_half[kept], t0[kept])
    with pytest.raises(ValueError, match="t-one"):
        next(train_indi_job(IndiTrainConfig(data=["x"], out="o.safetensors", t_one=1.5)))


def test_long_trajectories_keep_evenly_spaced_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    from restorelab.indi import restore as core

    x, y = _img(13), _img(14)
    frame = x.size * 4
    monkeypatch.setattr(core, "TRAJECTORY_BYTES", int(2.5 * frame))
    res = restore(y, "blur", 4, model=ToyF(x), tile=0, eps=0.0, clip=False)
    assert res.times == pytest.approx([1.0, 0.5, 0.0])
    for t, f in zip(res.times, res.trajectory, strict=True):
        np.testing.assert_allclose(f, (1 - t) * x + t * y, atol=1e-5)


def test_a_resumed_training_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    """Weights, optimizer, EMA and every random state survive a stop and a resume."""
    from PIL import Image

    from restorelab.indi.train import IndiTrainConfig, train_indi_job

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(3)
    for k in range(3):
        Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(data / f"{k}.png")

    def cfg(run: str, **kw: object) -> IndiTrainConfig:
        base = dict(data=[str(data)], out=str(tmp_path / f"{run}.safetensors"), degradation="jpeg",
                    steps=6, batch=2, patch=16, depth=2, width=4, val_every=3, val_crop=16,
                    recal_batches=0, run_dir=str(tmp_path / run), device="cpu", seed=5, ema=0.5)
        base.update(kw)
        return IndiTrainConfig(**base)  # type: ignore[arg-type]

    run_job(train_indi_job(cfg("whole")))
    first = run_job(train_indi_job(cfg("split", stop_at_step=3)))
    assert first["step"] == 3 and first["stopped_early"]
    run_job(train_indi_job(cfg("split", resume=str(tmp_path / "split" / "last.ckpt"))))
    a = torch.load(tmp_path / "whole" / "last.ckpt", weights_only=False)
    b = torch.load(tmp_path / "split" / "last.ckpt", weights_only=False)
    assert a["step"] == b["step"] == 6
    for key in ("model", "ema"):
        for name, v in a[key].items():
            torch.testing.assert_close(b[key][name], v, rtol=0, atol=0, msg=f"{key}.{name}")
    ema_differs = any(not torch.equal(a["ema"][k], a["model"][k]) for k in a["model"])
    assert ema_differs  # the EMA is a separate average, not a copy of the weights


def test_a_bad_ema_decay_is_refused_before_any_data_is_read(tmp_path: Path) -> None:
    from restorelab.indi.train import IndiTrainConfig, train_indi_job

    cfg = IndiTrainConfig(data=[str(tmp_path / "missing")], out=str(tmp_path / "m.safetensors"),
                          degradation="jpeg", ema=1.0, device="cpu")
    with pytest.raises(ValueError, match=r"ema decay must be in \[0, 1\), got 1.0"):
        run_job(train_indi_job(cfg))
