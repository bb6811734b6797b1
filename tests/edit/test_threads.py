"""A clone session used from two threads (the GUI's preview worker and its UI thread)."""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict

import numpy as np
import pytest

from restorelab.edit import CloneSession, prepare, solvers
from restorelab.edit.solvers import MaskedPoisson, ProblemCache


def _disc(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


def _run(*targets) -> list:
    """Run the callables in threads at once; re-raise the first error."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(targets))

    def wrap(fn):  # noqa: ANN001, ANN202
        def go() -> None:
            try:
                start.wait()
                fn()
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
        return go

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return errors


@pytest.mark.parametrize("mode", ["import", "mixed"])
def test_two_threads_placing_on_one_session_get_the_single_threaded_results(mode: str) -> None:
    rng = np.random.default_rng(31)
    src = rng.random((70, 80, 3)).astype(np.float32)
    dst = rng.random((160, 180, 3)).astype(np.float32)
    mask = _disc(70, 80, 35, 40, 30)
    # each offset clips the mask differently: its own crop problem and source crop
    offsets = [[(10, 12), (-20, -20), (100, 110)], [(-10, 130), (110, -15), (40, 60)]]
    ref_sess = prepare(src, mask, mode=mode)
    ref = {off: ref_sess.place(dst, off) for offs in offsets for off in offs}
    out_ref = {off: ref_sess.place(dst, off, out=np.zeros_like(dst)) for off in ref}
    sess = prepare(src, mask, mode=mode)  # cold: the threads race to build its lazy state too
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads as often as possible
    bad: list = []

    def worker(offs: list) -> None:
        out = np.zeros_like(dst)  # this thread's drag buffer
        for _ in range(4):
            for off in offs:
                if not np.array_equal(sess.place(dst, off), ref[off]):
                    bad.append(("new", off))
                if not np.array_equal(sess.place(dst, off, out=out), out_ref[off]):
                    bad.append(("out", off))

    try:
        _run(*(lambda o=o: worker(o) for o in offsets))
    finally:
        sys.setswitchinterval(old)
    assert bad == []


def test_lazy_capacitance_is_built_once_and_never_seen_half_built(monkeypatch) -> None:
    built: list[int] = []

    class Slow(solvers._Capacitance):
        def __init__(self, *a, **k) -> None:
            built.append(1)
            super().__init__(*a, **k)
            time.sleep(0.2)  # a wide window for a second thread to see it unfinished

    monkeypatch.setattr(solvers, "_Capacitance", Slow)
    prob = MaskedPoisson(_disc(30, 30, 15, 15, 10))
    got: list = []
    _run(lambda: got.append(prob.capacitance), lambda: got.append(prob.capacitance))
    assert len(built) == 1
    assert got[0] is got[1]
    assert got[0]._z1 is not None and got[0]._s1 > 0  # published complete


def test_problem_cache_lookup_and_eviction_do_not_interleave() -> None:
    class SlowDict(OrderedDict):
        def get(self, key, default=None):  # noqa: ANN001, ANN202
            got = super().get(key, default)
            time.sleep(0.01)  # another thread may evict ``key`` here, before move_to_end
            return got

    cache = ProblemCache(1)
    cache._d = SlowDict()
    a, b = _disc(20, 20, 10, 10, 3), _disc(20, 20, 10, 10, 5)
    cache.get(a)
    got: list = []
    _run(lambda: got.append(cache.get(a)), lambda: got.append(cache.get(b)))
    assert sorted(int(p.n) for p in got) == sorted([int(a.sum()), int(b.sum())])
    assert len(cache._d) == 1


def test_placements_of_one_session_run_one_at_a_time(monkeypatch) -> None:
    inside: list[int] = [0]
    most: list[int] = [0]
    solve = CloneSession._solve

    def counted(self, *a):  # noqa: ANN001, ANN202
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        try:
            return solve(self, *a)
        finally:
            inside[0] -= 1

    monkeypatch.setattr(CloneSession, "_solve", counted)
    rng = np.random.default_rng(32)
    src = rng.random((20, 20, 3)).astype(np.float32)
    dst = rng.random((40, 40, 3)).astype(np.float32)
    sess = prepare(src, _disc(20, 20, 10, 10, 7))
    _run(lambda: sess.place(dst, (3, 4)), lambda: sess.place(dst, (9, 2)))
    assert most[0] == 1


def test_one_blas_thread_keeps_one_thread_until_the_last_user_leaves(monkeypatch) -> None:
    """The BLAS thread count is process-wide: when two threads overlap in the one-thread
    section, the first to leave must not restore it under the second, and the last to leave
    restores the count from before the first entered. A recording stand-in for threadpoolctl
    (whose effect from a non-main thread differs between OpenBLAS builds)."""
    state = {"threads": 2}

    class Limiter:
        def __init__(self, limits: int) -> None:
            self.saved = state["threads"]
            state["threads"] = limits

        def restore_original_limits(self) -> None:
            state["threads"] = self.saved

        def __enter__(self):  # noqa: ANN204
            return self

        def __exit__(self, *exc) -> None:  # noqa: ANN002
            self.restore_original_limits()

    class Controller:
        def limit(self, limits: int, user_api: str) -> Limiter:
            return Limiter(limits)

    monkeypatch.setattr(solvers, "_BLAS_CONTROLLER", Controller())
    inside: list[int] = []
    t1_in, t2_in, t1_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with solvers._one_blas_thread():
            t1_in.set()
            t2_in.wait(10)
        t1_out.set()

    def second() -> None:
        t1_in.wait(10)
        with solvers._one_blas_thread():
            t2_in.set()
            t1_out.wait(10)
            inside.append(state["threads"])  # the other thread has left: still one thread

    _run(first, second)
    assert inside == [1]
    assert state["threads"] == 2
