"""Fault scenarios of ``restorelab bench faults`` (the quick ones; kills are in test_session)."""

from __future__ import annotations

import os

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


def test_concurrent_saves_and_a_killed_save_beside_a_pattern_named_sibling():
    for res in (faults.scenario_concurrent_saves(saves=12), faults.scenario_kill_pattern_name_save(trials=2)):
        assert res.ok, f"{res.name}: expected {res.expected}; observed {res.observed}"


def test_a_temporary_file_left_fails_the_check(tmp_path):
    """The check after a fault counts the writer's temporary files, dead or alive."""
    from restorelab.safety import temp_name
    from restorelab.session import save_session

    p = save_session(tmp_path / "w.rlsession", faults._session(1))
    before = faults._session_reader(p)
    assert faults._check_previous_intact("session", p, before, faults._session_reader)[0]
    temp_name(p, pid=os.getpid()).write_bytes(b"a write in progress")
    ok, what = faults._check_previous_intact("session", p, before, faults._session_reader)
    assert not ok and "leftovers" in what
