"""``restorelab bench cost``: measured vs declared cost, flagged outside the tolerance."""

from __future__ import annotations

import pytest

from restorelab.bench.cost import CostRow, cost_table
from restorelab.cli import build_parser


def test_rows_are_flagged_by_their_ratio():
    rows = [CostRow("a", 1.0, 2.0, 0.1), CostRow("b", 1.0, 0.2, 0.01), CostRow("c", 0.5, 5.0, 0.3)]
    assert [r.ratio for r in rows] == pytest.approx([2.0, 0.2, 10.0])
    _, body = cost_table(rows, tolerance=3.0)
    assert [b[-1] for b in body] == ["ok", "OFF", "OFF"]


def test_command_times_a_method_and_writes_its_section(tmp_path, capsys):
    out = tmp_path / "B.md"
    p = build_parser(["restorelab.bench.cost"])
    a = p.parse_args(["bench", "cost", "--methods", "gaussian,tikhonov", "--size", "32", "--repeats", "1",
                      "--tolerance", "1e9", "--out", str(out)])
    assert a.func(a) == 0
    text = out.read_text()
    assert "<!-- bench:cost -->" in text and "| gaussian | 0.05 |" in text and "| tikhonov |" in text
    assert "restorelab bench cost --methods gaussian,tikhonov --size 32 --repeats 1" in text
    a = p.parse_args(["bench", "cost", "--methods", "gaussian", "--size", "32", "--tolerance", "1e-9" ,
                      "--out", ""])
    with pytest.raises(ValueError, match="tolerance"):
        a.func(a)
