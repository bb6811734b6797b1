"""Every parameter a user can set, in any tool, has a human label (not its code name)."""

from __future__ import annotations

from restorelab import denoise, edit, prior
from restorelab.params import Param
from restorelab.prior import manifold, operators
from restorelab.prior.pnp import PNP_PARAMS


def _all_params() -> list[tuple[str, Param]]:
    out = [(f"denoise.{n}", p) for n in denoise.names() for p in denoise.get_class(n).params]
    out += [(f"edit.{k}", p) for k, v in edit.OPERATIONS.items() for p in v]
    out += [("sampler", p) for p in (*prior.SAMPLER_PARAMS, *prior.INVERSE_PARAMS)]
    out += [("decompose", p) for p in prior.DECOMPOSE_PARAMS]
    out += [("manifold", p) for p in manifold.MANIFOLD_PARAMS]
    out += [("pnp", p) for p in PNP_PARAMS]
    out += [(f"task.{k}", p) for k, v in operators.TASK_PARAMS.items() for p in v]
    return out


def test_every_parameter_has_a_human_label():
    params = _all_params()
    assert len(params) > 60
    missing = [f"{where}:{p.name}" for where, p in params if not p.label or p.label == p.name]
    assert missing == []
