"""daemon/states.py: the one transition table is complete, has no dead ends, and
every state an update can be in after a reboot or a power cut has a resume point."""

from __future__ import annotations

from collections import deque

import pytest

from pyupdate_agent.daemon.machine import HANDLERS
from pyupdate_agent.daemon.states import (
    RESUME,
    STATUS_ON_ENTER,
    TRANSITIONS,
    Outcome,
    State,
    next_state,
)

UPDATE_STATES = set(State) - {State.IDLE, State.SYNC}
# the statuses of Mender's device API (docs/device-api.md)
MENDER_STATUSES = {"downloading", "installing", "rebooting", "success", "failure"}


def _successors(state: State) -> set[State]:
    return {target for (source, _), target in TRANSITIONS.items() if source == state}


def _reachable(start: State) -> set[State]:
    seen, todo = {start}, deque([start])
    while todo:
        for nxt in _successors(todo.popleft()) - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_every_transition_leads_from_a_state_on_an_outcome_to_a_state() -> None:
    for (source, outcome), target in TRANSITIONS.items():
        assert isinstance(source, State) and isinstance(outcome, Outcome)
        assert isinstance(target, State)
        assert next_state(source, outcome) is target


def test_every_state_is_reachable_from_idle() -> None:
    assert _reachable(State.IDLE) == set(State)


@pytest.mark.parametrize("state", list(State))
def test_every_state_leads_back_to_idle(state: State) -> None:
    """No dead end: whatever happens, the machine gets back to the Idle loop."""
    assert _successors(state), f"{state} has no way out"
    assert State.IDLE in _reachable(state)


@pytest.mark.parametrize("state", sorted(set(State) - {State.IDLE}))
def test_every_state_but_idle_handles_failure(state: State) -> None:
    assert (state, Outcome.FAIL) in TRANSITIONS


def test_idle_only_goes_to_sync_and_sync_only_starts_a_download() -> None:
    assert _successors(State.IDLE) == {State.SYNC}
    assert _successors(State.SYNC) == {State.IDLE, State.DOWNLOAD}


def test_failures_before_the_install_do_not_roll_back() -> None:
    """Nothing was activated during Download: straight to ArtifactFailure."""
    assert next_state(State.DOWNLOAD, Outcome.FAIL) is State.ARTIFACT_FAILURE
    assert next_state(State.DOWNLOAD, Outcome.ABORTED) is State.ARTIFACT_FAILURE


@pytest.mark.parametrize(
    "state",
    [State.ARTIFACT_INSTALL, State.ARTIFACT_REBOOT, State.ARTIFACT_VERIFY_REBOOT,
     State.ARTIFACT_COMMIT],
)  # fmt: skip
def test_failures_and_aborts_after_the_install_roll_back(state: State) -> None:
    assert next_state(state, Outcome.FAIL) is State.ARTIFACT_ROLLBACK
    assert next_state(state, Outcome.ABORTED) is State.ARTIFACT_ROLLBACK


def test_commit_is_reached_only_through_verification_or_a_payload_without_reboot() -> None:
    into_commit = {(s, o) for (s, o), t in TRANSITIONS.items() if t is State.ARTIFACT_COMMIT}
    assert into_commit == {
        (State.ARTIFACT_VERIFY_REBOOT, Outcome.OK),
        (State.ARTIFACT_INSTALL, Outcome.NO_REBOOT),
    }


def test_resume_covers_every_update_state_and_never_idle_or_sync() -> None:
    assert set(RESUME) == UPDATE_STATES
    assert all(isinstance(target, State) for target in RESUME.values())
    assert not set(RESUME.values()) & {State.IDLE, State.SYNC}


def test_resume_never_reruns_half_an_install_or_a_reboot() -> None:
    assert RESUME[State.ARTIFACT_INSTALL] is State.ARTIFACT_ROLLBACK
    assert RESUME[State.ARTIFACT_REBOOT] is State.ARTIFACT_VERIFY_REBOOT
    assert RESUME[State.ARTIFACT_ROLLBACK_REBOOT] is State.ARTIFACT_VERIFY_ROLLBACK_REBOOT


def test_every_state_has_a_handler() -> None:
    assert set(HANDLERS) == set(State)


def test_statuses_reported_on_enter_are_menders() -> None:
    assert set(STATUS_ON_ENTER) <= UPDATE_STATES
    assert set(STATUS_ON_ENTER.values()) <= MENDER_STATUSES


def test_an_unknown_transition_is_a_value_error_naming_both() -> None:
    with pytest.raises(ValueError, match="no transition from Idle on fail"):
        next_state(State.IDLE, Outcome.FAIL)
