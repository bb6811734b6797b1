"""The training recipe: exact resume (weights, optimizer, EMA, schedule, sampler), EMA, schedule, losses,
the compiled step against the eager one, and the MAC count behind the TFLOP/s figure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from restorelab.jobs import run_job
from restorelab.models.nets import build_model
from restorelab.models.train import (
    TrainConfig,
    TrainStep,
    ema_decay_at,
    ema_update,
    lr_at,
    make_optimizer,
    new_schedule,
    residual_loss,
    resume_schedule,
    schedule_done,
    schedule_progress,
    train_job,
)


def _cfg(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        data=[str(data)],
        out=str(out),
        channels=1,
        arch="bfunet",
        depth=2,
        width=4,
        steps=7,
        batch=4,
        patch=16,
        val_every=100,
        val_crop=32,
        val_count=1,
        recal_batches=1,
        device="cpu",
        seed=0,
        warmup=2,
        lr=2e-3,
        ema=0.9,
        loss="charbonnier",
        run_dir=str(out.parent / (out.stem + "_run")),
    )
    base.update(kw)
    return TrainConfig(**base)


def _equal_state(a: object, b: object, where: str = "") -> None:
    """Recursive exact equality of checkpoint entries (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for k in a:
            _equal_state(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where  # type: ignore[arg-type]
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _equal_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("sampler", ["numpy", "torch"])
def test_stop_after_k_and_resume_to_n_equals_the_uninterrupted_run(
    image_dir: Path, tmp_path: Path, sampler: str
) -> None:
    n, k = 7, 3
    torch.set_num_threads(1)
    full = run_job(train_job(_cfg(image_dir, tmp_path / "full.safetensors", steps=n, sampler=sampler)))
    part = run_job(
        train_job(_cfg(image_dir, tmp_path / "part.safetensors", steps=n, sampler=sampler, stop_at_step=k))
    )
    assert part["step"] == k and not part["complete"] and full["complete"]
    ck_part = torch.load(tmp_path / "part_run" / "last.ckpt", weights_only=True)
    assert ck_part["progress"] == k / n
    resumed = run_job(
        train_job(
            _cfg(
                image_dir,
                tmp_path / "res.safetensors",
                steps=n,
                sampler=sampler,
                resume=str(tmp_path / "part_run" / "last.ckpt"),
                run_dir=str(tmp_path / "res_run"),
            )
        )
    )
    assert resumed["start_step"] == k and resumed["step"] == n and resumed["complete"]
    assert resumed["lr"] == full["lr"]
    a = torch.load(tmp_path / "full_run" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "res_run" / "last.ckpt", weights_only=True)
    keys = ["model", "optim", "ema", "step", "progress", "schedule", "np_rng", "torch_rng"]
    keys += ["dev_rng"] if sampler == "torch" else []
    for key in keys:
        _equal_state(a[key], b[key], key)
    # the EMA is a real average: it differs from the last weights
    assert not torch.equal(a["ema"]["inc.conv.weight"], a["model"]["inc.conv.weight"])


def test_schedule_value_at_resume_continues_without_a_restart() -> None:
    cfg = TrainConfig(data=["x"], out="o.safetensors", lr=1e-3, warmup=10, lr_min_factor=0.01)
    total = 1000
    sched = new_schedule(cfg, total)
    lrs = [lr_at(s, schedule_progress(s, 0.0, sched), cfg, total) for s in range(total + 1)]
    # same budgets: the resumed schedule is the saved one, so every later value is identical
    p400 = schedule_progress(400, 0.0, sched)
    same = resume_schedule(sched, total, 0.0, p400, 400, 0.0)
    assert same == sched
    # a longer budget at step 400: continuous at the resume, then annealed to the new end
    longer = resume_schedule(sched, 2000, 0.0, p400, 400, 0.0)
    assert schedule_progress(400, 0.0, longer) == pytest.approx(0.4, abs=1e-12)
    assert lr_at(400, schedule_progress(400, 0.0, longer), cfg, 2000) == pytest.approx(lrs[400], rel=1e-12)
    assert schedule_progress(1200, 0.0, longer) == pytest.approx(0.4 + 0.6 * 0.5)
    assert schedule_progress(2000, 0.0, longer) == 1.0
    assert lr_at(1999, schedule_progress(2000, 0.0, longer), cfg, 2000) == pytest.approx(1e-5)
    # warm-up then cosine: the value at the middle of the anneal is the mean of peak and floor
    mid = lr_at(500, 0.5, cfg, total)
    assert mid == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5))
    assert lrs[0] == pytest.approx(1e-4 * (0.01 + 0.99 * 0.5 * (1 + math.cos(0.0))))
    # a time budget: progress is the larger of the two fractions
    tsched = {"anchor": [0.0, 0, 0.0], "steps": 10**9, "budget_s": 60.0}
    assert schedule_progress(5, 30.0, tsched) == pytest.approx(0.5)
    longer_t = resume_schedule(tsched, 10**9, 120.0, 0.5, 5, 30.0)
    assert schedule_progress(5, 30.0, longer_t) == pytest.approx(0.5)
    assert schedule_progress(9, 75.0, longer_t) == pytest.approx(0.75)
    # a finished schedule given more steps trains on at the floor rate until the new budget
    ext = resume_schedule(sched, 1500, 0.0, 1.0, 1000, 0.0)
    assert schedule_progress(1200, 0.0, ext) == 1.0 and lr_at(1200, 1.0, cfg, 1500) == pytest.approx(1e-5)
    assert not schedule_done(1499, 0.0, ext) and schedule_done(1500, 0.0, ext)
    assert schedule_done(1000, 0.0, sched) and not schedule_done(999, 0.0, sched)


def test_ema_update_formula() -> None:
    torch.manual_seed(0)
    model = build_model("bfcnn", 1, 3, 4)
    ema = build_model("bfcnn", 1, 3, 4)
    before = [p.detach().clone() for p in ema.parameters()]
    ema_update(ema, model, 0.75)
    for e, e0, p in zip(ema.parameters(), before, model.parameters(), strict=True):
        torch.testing.assert_close(e, 0.75 * e0 + 0.25 * p.detach(), rtol=0, atol=1e-7)
    ema_update(ema, model, 0.0)
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        assert torch.equal(e, p.detach())
    assert ema_decay_at(0, 0.999) == pytest.approx(0.1)
    assert ema_decay_at(90, 0.999) == pytest.approx(91 / 100)
    assert ema_decay_at(10**6, 0.999) == 0.999
    assert ema_decay_at(10**6, 0.0) == 0.0


def test_residual_losses() -> None:
    pred = torch.tensor([0.5, -0.25, 0.0, 1.0])
    noise = torch.tensor([0.0, 0.25, 0.0, 0.0])
    r = pred - noise
    assert float(residual_loss(pred, noise, "l2")) == pytest.approx(float((r**2).mean()))
    assert float(residual_loss(pred, noise, "l1")) == pytest.approx(0.5)
    ch = sum(math.sqrt(float(v) ** 2 + 1e-6) for v in r) / 4
    assert float(residual_loss(pred, noise, "charbonnier")) == pytest.approx(ch, rel=1e-6)
    with pytest.raises(ValueError, match="l2, l1, charbonnier"):
        residual_loss(pred, noise, "huber")


@pytest.mark.slow
def test_compiled_step_equals_the_eager_step_on_cpu() -> None:
    """torch.compile with the aot_eager backend: the graph capture (Dynamo), functionalisation and
    AOTAutograd backward that every compiled mode uses, without C++ code generation (inductor
    on a 2-core CPU takes over 30 s to compile the step; importing Dynamo alone takes seconds,
    hence ``slow``)."""
    torch.manual_seed(0)
    a = build_model("bfunet", 1, 2, 4)
    b = build_model("bfunet", 1, 2, 4)
    b.load_state_dict(a.state_dict())
    cfg = TrainConfig(data=["x"], out="o.safetensors", loss="l1", compile="none")
    dev = torch.device("cpu")
    steps = []
    for net, mode in ((a, "none"), (b, "aot_eager")):
        cfg.compile = mode
        ema = build_model("bfunet", 1, 2, 4)
        ema.load_state_dict(net.state_dict())
        opt, _ = make_optimizer(net.parameters(), 1e-3, dev)
        steps.append((TrainStep(net, opt, ema, cfg, dev), ema))
    assert steps[1][0].mode == "aot_eager"
    g = torch.Generator().manual_seed(1)
    for _ in range(2):
        y = torch.rand(4, 1, 16, 16, generator=g)
        n = torch.randn(4, 1, 16, 16, generator=g) * 0.1
        la = steps[0][0](y, n, 1e-3, 0.5)
        lb = steps[1][0](y, n, 1e-3, 0.5)
        torch.testing.assert_close(lb, la, rtol=1e-5, atol=1e-6)
    assert steps[1][0].note == ""
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb
        torch.testing.assert_close(vb, va, rtol=1e-5, atol=1e-6)
    for pa, pb in zip(steps[0][1].parameters(), steps[1][1].parameters(), strict=True):
        torch.testing.assert_close(pb, pa, rtol=1e-5, atol=1e-6)


def test_macs_per_pixel_counts_every_convolution() -> None:
    from restorelab.models.flops import macs_per_pixel

    net = build_model("bfcnn", 1, 20, 64)
    assert macs_per_pixel(net, 16) == 9 * (1 * 64 + 18 * 64 * 64 + 64 * 1)
    unet = build_model("bfunet", 3, 4, 32)
    w = [32, 64, 128, 256]
    expect = 9 * (3 * 32 + 32 * 3)  # in and out convs
    for lv in range(4):
        cin = w[0] if lv == 0 else w[lv - 1]
        expect += 9 * (cin * w[lv] + w[lv] * w[lv]) / 4**lv
    for lv in range(3):
        expect += 9 * ((w[lv + 1] + w[lv]) * w[lv] + w[lv] * w[lv]) / 4**lv
    assert macs_per_pixel(unet, 64) == pytest.approx(expect)
    assert macs_per_pixel(unet, 60) == pytest.approx(expect)  # rounded up to a multiple of 8


def test_cli_prints_throughput(image_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from restorelab.cli import main

    rc = main(
        ["train", "--data", str(image_dir), "--arch", "bfunet", "--depth", "2", "--width", "4",
         "--steps", "3", "--batch", "2", "--patch", "16", "--val-every", "3", "--device", "cpu",
         "--loss", "l1", "--ema", "0.5", "--quiet", "--run-dir", str(tmp_path / "r"),
         "--out", str(tmp_path / "o.safetensors")]
    )  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("throughput:"))
    kmacs = float(line.split("of 16², ")[1].split(" k MACs")[0])
    pps = float(line.split("throughput: ")[1].split(" patches/s")[0])
    tflops = float(line.split("k MACs/pixel, ")[1].split(" TFLOP/s")[0])
    from restorelab.models.flops import macs_per_pixel

    macs = macs_per_pixel(build_model("bfunet", 1, 2, 4), 16)
    assert kmacs == pytest.approx(macs / 1e3, abs=0.005)
    assert pps > 0 and tflops == pytest.approx(pps * 16 * 16 * macs * 6 / 1e12, rel=0.01)
    ck = torch.load(tmp_path / "r" / "last.ckpt", weights_only=True)
    assert json.loads(ck["config"])["loss"] == "l1"


def test_a_compile_failure_falls_back_to_the_eager_step() -> None:
    torch.manual_seed(0)
    a = build_model("bfcnn", 1, 3, 4)
    b = build_model("bfcnn", 1, 3, 4)
    b.load_state_dict(a.state_dict())
    dev = torch.device("cpu")
    cfg = TrainConfig(data=["x"], out="o.safetensors", compile="none")
    ref = TrainStep(a, make_optimizer(a.parameters(), 1e-3, dev)[0], build_model("bfcnn", 1, 3, 4), cfg, dev)
    st = TrainStep(b, make_optimizer(b.parameters(), 1e-3, dev)[0], build_model("bfcnn", 1, 3, 4), cfg, dev)

    def broken(y: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("backend compiler failed\nlong trace")

    st.fn, st.mode, st._first = broken, "default", True
    y, n = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8) * 0.1
    assert torch.equal(st(y, n, 1e-3, 0.0), ref(y, n, 1e-3, 0.0))
    assert st.mode == "none" and st.note.endswith("RuntimeError: backend compiler failed")
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
