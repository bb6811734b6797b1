"""Fuzzing (fast version of ``restorelab bench fuzz``): mutated files only raise the documented error."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restorelab.bench import fuzz as fz

SEEDS = fz.make_seeds()
WORKDIR = Path(tempfile.mkdtemp(prefix="rl-test-fuzz-"))
FAST = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def test_seeds_are_valid_inputs():
    kinds = {s.kind for s in SEEDS}
    assert kinds == {"png", "tiff", "jpeg", "npy", "session"}
    for s in SEEDS:
        case = fz.Case(s.kind, {"png": ".png", "tiff": ".tif", "jpeg": ".jpg", "npy": ".npy",
                                "session": ".rlsession"}[s.kind], s.data, s.side)
        assert fz.run_case(case, WORKDIR) == ("ok", ""), s.name


@FAST
@given(st.integers(0, len(SEEDS) - 1), st.integers(0, 2**63 - 1))
def test_mutated_files_only_raise_documented_errors(i, rs):
    import numpy as np

    case = fz.mutate(SEEDS[i], np.random.default_rng(rs), SEEDS)
    outcome, detail = fz.run_case(case, WORKDIR)
    assert outcome in ("ok", "rejected"), f"{SEEDS[i].name} {case.ops}: {detail}"


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_as_session_or_image(data):
    for kind, ext in (("session", ".rlsession"), ("png", ".png"), ("tiff", ".tif")):
        outcome, detail = fz.run_case(fz.Case(kind, ext, data), WORKDIR)
        assert outcome in ("ok", "rejected"), f"{kind}: {detail}"


def test_harness_classifies_undocumented_errors_as_crashes(monkeypatch):
    import restorelab.io

    def broken(path, **kw):
        raise KeyError("oops")

    monkeypatch.setattr(restorelab.io, "load_image", broken)
    outcome, detail = fz.run_case(fz.Case("png", ".png", SEEDS[0].data), WORKDIR)
    assert outcome == "crash" and "KeyError" in detail


def test_watched_workers_count_every_input():
    rep = fz.fuzz(40, seed=3, jobs=1, timeout_s=30)
    assert rep.total == 40 and not rep.crashes and not rep.hangs
    assert {k for k, _ in rep.counts} <= {"png", "tiff", "jpeg", "npy", "session"}


@pytest.mark.parametrize("seed,index", [(0, 56679), (0, 1802), (0, 2497), (0, 2927)])
def test_regressions_found_by_the_benchmark(seed, index):
    """Inputs that once crashed (here: a damaged .npy header inside a session's sidecar made
    numpy's header parser raise tokenize.TokenError)."""
    case = fz.make_case(index, seed, SEEDS)
    outcome, detail = fz.run_case(case, WORKDIR)
    assert outcome == "rejected", detail


def test_inputs_are_reproducible():
    a = fz.make_case(123, 7, SEEDS)
    b = fz.make_case(123, 7, SEEDS)
    assert (a.data, a.side, a.ops) == (b.data, b.side, b.ops)


@pytest.mark.parametrize("n", [0, -5])
def test_bad_n(n):
    with pytest.raises(ValueError):
        fz.fuzz(n)


def test_hostile_families_hold_over_300_kinds_and_sample_kinds_are_clean(tmp_path):
    from restorelab.bench import hostile

    sizes = {f: len(hostile.catalogue(f)) for f in hostile.families()}
    assert sum(sizes.values()) >= 300 and min(sizes.values()) >= 5
    for f in ("session-json", "session-paths", "session-nan", "fifos", "tiff-photometric", "long-names"):
        for i, k in enumerate(hostile.catalogue(f)[:3]):
            d = tmp_path / f"{f}-{i}"
            d.mkdir()
            outcome, detail = hostile.run_kind(k, d)
            assert outcome == "clean", (f, k.name, detail)


def test_hostile_harness_classifies_failures_tracebacks_and_leftovers(tmp_path):
    from restorelab.bench import hostile
    from restorelab.safety import temp_name

    def wrong(d):
        raise hostile.Failed("wrong pixels")

    def raw(d):
        return {}["missing"]

    def leaves(d):
        temp_name(d / "out.png", pid=4194399).write_bytes(b"partial")  # a dead writer's temporary
        (d / "out.png").write_bytes(b"x")
        return "written"

    got = [hostile.run_kind(hostile.Kind("t", n, fn), tmp_path)[0] for n, fn in
           (("wrong", wrong), ("raw", raw), ("leaves", leaves))]
    assert got == ["failed", "traceback", "failed"]
