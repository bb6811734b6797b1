"""Fault scenarios of ``restorelab bench faults`` (the quick ones; kills are in test_session)."""

from __future__ import annotations

import pytest

from restorelab.bench import faults


@pytest.mark.parametrize(
    "scenario",
    [
        faults.scenario_oom_tiles,
        faults.scenario_oom_cpu,
        faults.scenario_oom_everywhere,
        faults.scenario_enospc_session,
        faults.scenario_enospc_image,
        faults.scenario_readonly,
        faults.scenario_fsize_session,
        faults.scenario_crash_mid_job,
    ],
    ids=lambda f: f.__name__,
)
def test_fault_scenario(scenario):
    res = scenario()
    assert res.ok, f"{res.name}: expected {res.expected}; observed {res.observed}"
