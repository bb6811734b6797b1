"""Param declarations: human label and unit, range check with the range in the message."""

from __future__ import annotations

import pytest

from restorelab.params import Param, ParamError, format_params, resolve_params
from restorelab.prior.decompose import DECOMPOSE_PARAMS


def test_validate_names_value_range_and_label():
    p = Param("lam", float, 0.1, lo=1e-4, hi=10.0, log=True, label="Regularization weight λ")
    assert p.validate(2.5) == 2.5 and p.validate("0.5") == 0.5
    with pytest.raises(ValueError) as e:
        p.validate(5000)
    assert str(e.value) == "lam = 5000 is out of range [0.0001, 10] (Regularization weight λ)"
    assert isinstance(e.value, ParamError)
    with pytest.raises(ParamError, match=r"n = 0 is out of range \[1, 8\] \(Iterations\)"):
        Param("n", int, 3, lo=1, hi=8, label="Iterations").validate(0)
    with pytest.raises(ParamError, match=r"x = -1 is out of range \[0, ∞\)"):
        Param("x", float, 1.0, lo=0.0, label="Some value").validate(-1)


def test_resolve_uses_validate():
    ps = (Param("n", int, 3, lo=1, hi=10, label="Number of points"),)
    with pytest.raises(ParamError, match=r"n = 11 is out of range \[1, 10\] \(Number of points\)"):
        resolve_params(ps, {"n": 11})


def test_label_and_unit_are_shown_and_label_falls_back_to_the_name():
    p = Param("t", float, 1.0, lo=1e-3, hi=200.0, unit="px²", label="Diffusion time", help="h")
    line = format_params([p])
    assert "Diffusion time" in line and "px²" in line and line.strip().startswith("t ")
    assert Param("q", int, 1).display_label == "q"
    assert p.display_label == "Diffusion time"


def test_core_declarations_have_labels():
    for p in DECOMPOSE_PARAMS:
        assert p.label and p.label.lower() != p.name.lower(), p.name
