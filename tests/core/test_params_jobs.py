import pytest

from restorelab.jobs import Cancelled, CancelToken, Progress, run_job
from restorelab.params import Param, ParamError, resolve_params


def test_sigma_dependent_default_and_range():
    p = Param("lam", float, lambda s: 2 * s, lo=0.0, hi=1.0, log=False)
    assert p.default_for(0.1) == pytest.approx(0.2)
    assert p.default_for(5.0) == 1.0  # clamped into the declared range
    with pytest.raises(ParamError):
        p.coerce(2.0)
    with pytest.raises(ParamError):
        p.coerce("abc")


def test_resolve_rejects_unknown():
    ps = (Param("n", int, 3, lo=1, hi=10), Param("mode", str, "a", choices=("a", "b")))
    assert resolve_params(ps, {"n": "4"}) == {"n": 4, "mode": "a"}
    with pytest.raises(ParamError, match="unknown"):
        resolve_params(ps, {"m": 1})
    with pytest.raises(ParamError):
        resolve_params(ps, {"mode": "c"})


def _counting_job(n, seen):
    try:
        for i in range(n):
            seen.append(i)
            yield Progress(i, n)
        return "done"
    finally:
        seen.append("closed")


def test_run_job_and_cancel_between_steps():
    seen = []
    assert run_job(_counting_job(3, seen)) == "done"
    tok = CancelToken()
    seen2 = []

    def on_progress(ev):
        if ev.step == 1:
            tok.cancel()

    with pytest.raises(Cancelled):
        run_job(_counting_job(100, seen2), cancel=tok, on_progress=on_progress)
    assert seen2 == [0, 1, "closed"]  # stopped within one step, cleanup ran
