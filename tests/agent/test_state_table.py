"""core/states.py: the one table is complete, has no dead ends, keeps mender's order, every
state a record can hold has a resume point, and docs/agent-state-machine.md is generated
from it."""

from __future__ import annotations

import subprocess
import sys
from collections import deque
from pathlib import Path

import pytest

from pyupdate_agent.core.states import (
    EDGES,
    FINAL,
    RESUME,
    ROWS,
    Do,
    Mode,
    Outcome,
    Report,
    Script,
    State,
    markdown,
    next_state,
)
from pyupdate_agent.core.steps import Steps
from pyupdate_agent.daemon.machine import Daemon

DOC = Path(__file__).parents[2] / "docs" / "agent-state-machine.md"
S, R = State, Outcome
# the statuses of Mender's device API (docs/device-api.md)
MENDER_STATUSES = {"downloading", "pause_before_installing", "installing", "rebooting", "success",
                   "failure"}  # fmt: skip
# standalone commands start in Download (`install`) or where an update waits (the others)
ENTRIES = {Mode.MANAGED: {S.IDLE}, Mode.STANDALONE: {S.DOWNLOAD, S.DOWNLOADED, S.INSTALLED}}
ENDS = {Mode.MANAGED: {S.IDLE}, Mode.STANDALONE: {S.IDLE, S.DOWNLOADED, S.INSTALLED}}


def _states(mode: Mode) -> set[State]:
    return {row.state for row in ROWS.values() if mode in row.modes}


def _successors(mode: Mode, state: State) -> set[State]:
    return {e.target for e in EDGES if e.source == state and mode in e.modes}


def _reachable(mode: Mode, starts: set[State]) -> set[State]:
    """The states reachable from `starts` (Idle included where a standalone command ends)."""
    seen, todo = set(starts), deque(starts)
    while todo:
        for nxt in _successors(mode, todo.popleft()) - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_doc_is_generated_from_the_table() -> None:
    assert DOC.read_text() == markdown(), (
        "docs/agent-state-machine.md is stale: run"
        " `python -m pyupdate_agent.core.states --markdown > docs/agent-state-machine.md`"
    )


def test_the_generator_runs_as_a_module() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pyupdate_agent.core.states", "--markdown"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout == markdown()
    assert "stateDiagram-v2" in out.stdout


def test_every_state_has_one_row_and_every_edge_joins_rows_of_its_modes() -> None:
    assert set(ROWS) == set(State)
    for e in EDGES:
        # Idle is where a standalone command ends
        ends = {Mode.STANDALONE} if e.target is S.IDLE else set()
        assert e.modes <= ROWS[e.source].modes and e.modes <= ROWS[e.target].modes | ends, e
        for mode in e.modes:
            assert next_state(mode, e.source, e.outcome) is e.target


def test_an_outcome_leads_to_one_state_per_mode() -> None:
    keys = [(mode, e.source, e.outcome) for e in EDGES for mode in e.modes]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("mode", list(Mode))
def test_every_state_of_a_mode_is_reachable_and_leads_to_an_end(mode: Mode) -> None:
    assert _reachable(mode, ENTRIES[mode]) == _states(mode) | ENDS[mode]
    for state in _states(mode):
        assert _reachable(mode, {state}) & ENDS[mode], f"{state} is a dead end ({mode})"


@pytest.mark.parametrize("state", list(State))
def test_a_state_that_can_fail_has_a_failure_edge_in_each_of_its_modes(state: State) -> None:
    row = ROWS[state]
    hard = [s for s in row.steps if not getattr(s, "soft", False)]
    for mode in row.modes:
        if any(isinstance(s, Script | Do) for s in hard):
            assert (mode, state, R.FAIL) in {
                (m, e.source, e.outcome) for e in EDGES for m in e.modes
            }


def test_every_action_is_implemented_where_it_runs() -> None:
    for row in ROWS.values():
        for step in (*row.steps, *row.error):
            if not isinstance(step, Do):
                continue
            in_steps = callable(getattr(Steps, step.name, None))
            in_daemon = callable(getattr(Daemon, f"act_{step.name}", None))
            assert in_steps or in_daemon, step.name
            if Mode.STANDALONE in row.modes:
                assert in_steps, f"{step.name} is needed standalone"


def test_statuses_are_menders_and_reported_in_managed_mode_only() -> None:
    for row in ROWS.values():
        if row.status:
            assert row.status in MENDER_STATUSES and Mode.MANAGED in row.modes
        for step in row.steps:
            if isinstance(step, Report):
                assert step.status in MENDER_STATUSES | {FINAL, "already-installed"}


def test_aborts_exist_in_managed_mode_only_and_never_skip_the_rollback_after_install() -> None:
    for e in EDGES:
        if e.outcome is R.ABORTED:
            assert e.modes == {Mode.MANAGED}
    for state in (S.ARTIFACT_REBOOT, S.ARTIFACT_VERIFY_REBOOT, S.ARTIFACT_COMMIT):
        assert next_state(Mode.MANAGED, state, R.ABORTED) is S.ARTIFACT_ROLLBACK
        assert next_state(Mode.MANAGED, state, R.FAIL) is S.ARTIFACT_ROLLBACK


@pytest.mark.parametrize("mode", list(Mode))
def test_failures_before_the_install_do_not_roll_back(mode: Mode) -> None:
    assert next_state(mode, S.DOWNLOAD, R.FAIL) is S.ARTIFACT_FAILURE
    assert next_state(mode, S.ARTIFACT_INSTALL, R.FAIL) is S.ARTIFACT_ROLLBACK


def test_commit_is_reached_only_after_verification_a_command_or_without_reboot() -> None:
    into = {(e.source, e.outcome) for e in EDGES if e.target is S.ARTIFACT_COMMIT}
    assert into == {
        (S.ARTIFACT_VERIFY_REBOOT, R.OK),
        (S.ARTIFACT_INSTALL, R.NO_REBOOT),
        (S.INSTALLED, R.COMMIT),
    }
    assert next_state(Mode.STANDALONE, S.ARTIFACT_INSTALL, R.NO_REBOOT) is S.INSTALLED


def test_the_success_path_runs_menders_state_scripts_in_order() -> None:
    """docs/state-scripts.md: the daemon's order of scripts for an update with a reboot."""
    path = [S.DOWNLOAD, S.ARTIFACT_INSTALL, S.ARTIFACT_REBOOT, S.ARTIFACT_VERIFY_REBOOT,
            S.ARTIFACT_COMMIT, S.CLEANUP]  # fmt: skip
    outcomes = [R.OK, R.OK, R.OK, R.OK, R.OK]
    for state, outcome, nxt in zip(path[:-1], outcomes, path[1:], strict=True):
        assert next_state(Mode.MANAGED, state, outcome) is nxt
    scripts = [str(s) for state in path for s in ROWS[state].steps if isinstance(s, Script)]
    assert scripts == [
        "Download_Enter", "Download_Leave", "ArtifactInstall_Enter", "ArtifactInstall_Leave",
        "ArtifactReboot_Enter", "ArtifactReboot_Leave", "ArtifactCommit_Enter",
        "ArtifactCommit_Leave",
    ]  # fmt: skip
    commit = [str(s) for s in ROWS[S.ARTIFACT_COMMIT].steps]
    assert commit.index("ArtifactCommit_Enter") < commit.index("report `success`")
    assert commit.index("report `success`") < commit.index("commit")


def test_the_record_of_every_state_has_a_resume_point() -> None:
    persisted = {
        Mode.MANAGED: _states(Mode.MANAGED) - {S.SYNC},
        Mode.STANDALONE: _states(Mode.STANDALONE) - {S.IDLE},
    }
    for mode, states in persisted.items():
        assert {s for (m, s) in RESUME if m is mode} == states, mode
    for (mode, _), how in RESUME.items():
        assert mode in ROWS[how.target].modes


def test_resume_never_reruns_half_an_install_or_a_reboot() -> None:
    for mode in Mode:
        assert RESUME[(mode, S.ARTIFACT_INSTALL)].target is S.ARTIFACT_ROLLBACK
        assert RESUME[(mode, S.DOWNLOAD)].target is S.ARTIFACT_FAILURE
    assert RESUME[(Mode.MANAGED, S.DOWNLOAD)].retry
    assert RESUME[(Mode.MANAGED, S.ARTIFACT_REBOOT)].target is S.ARTIFACT_VERIFY_REBOOT
    rollback_reboot = RESUME[(Mode.MANAGED, S.ARTIFACT_ROLLBACK_REBOOT)]
    assert rollback_reboot.target is S.ARTIFACT_VERIFY_ROLLBACK_REBOOT


def test_a_downloaded_update_waits_then_installs_or_is_dropped_without_a_rollback() -> None:
    """Download-now-install-later: ArtifactInstall's scripts run only once the wait ends;
    a dropped download never reaches ArtifactRollback (nothing was activated)."""
    for mode in Mode:
        assert next_state(mode, S.DOWNLOAD, R.PAUSE) is S.DOWNLOADED
        assert next_state(mode, S.DOWNLOADED, R.INSTALL) is S.ARTIFACT_INSTALL
        assert RESUME[(mode, S.DOWNLOADED)].target is S.DOWNLOADED
    assert next_state(Mode.STANDALONE, S.DOWNLOADED, R.ROLLBACK) is S.CLEANUP
    assert next_state(Mode.MANAGED, S.DOWNLOADED, R.ABORTED) is S.ARTIFACT_FAILURE
    assert ROWS[S.DOWNLOADED].status == "pause_before_installing"  # Mender's name
    assert not any(isinstance(s, Script) for s in ROWS[S.DOWNLOADED].steps)
    download = [str(s) for s in ROWS[S.DOWNLOAD].steps]
    assert download.index("Download_Leave") < download.index("hold_install")


def test_an_unknown_transition_is_a_value_error_naming_both() -> None:
    with pytest.raises(ValueError, match="no transition from Idle on fail"):
        next_state(Mode.MANAGED, S.IDLE, R.FAIL)
