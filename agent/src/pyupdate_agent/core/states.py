"""The daemon's states and its one transition table (Mender's state names).

Each state's handler returns an Outcome; the next state is looked up here and
persisted before it runs, so a power cut resumes at a known state. States
whose names start with `Artifact` have state scripts (Enter/Leave/Error).
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    IDLE = "Idle"
    SYNC = "Sync"  # inventory update and deployment check
    DOWNLOAD = "Download"  # streams the artifact into the inactive slot (or module)
    ARTIFACT_INSTALL = "ArtifactInstall"  # switches the bootloader / module install
    ARTIFACT_REBOOT = "ArtifactReboot"
    ARTIFACT_VERIFY_REBOOT = "ArtifactVerifyReboot"
    ARTIFACT_COMMIT = "ArtifactCommit"
    ARTIFACT_ROLLBACK = "ArtifactRollback"
    ARTIFACT_ROLLBACK_REBOOT = "ArtifactRollbackReboot"
    ARTIFACT_VERIFY_ROLLBACK_REBOOT = "ArtifactVerifyRollbackReboot"
    ARTIFACT_FAILURE = "ArtifactFailure"
    CLEANUP = "Cleanup"


class Outcome(StrEnum):
    OK = "ok"
    FAIL = "fail"
    NOTHING = "nothing"  # no deployment due, or already installed
    NO_REBOOT = "no-reboot"  # the payload needs no reboot
    NO_ROLLBACK = "no-rollback"  # the payload cannot roll back (or nothing was activated)
    ABORTED = "aborted"  # the server answered 409: the deployment was aborted


S, R = State, Outcome

TRANSITIONS: dict[tuple[State, Outcome], State] = {
    (S.IDLE, R.OK): S.SYNC,
    (S.SYNC, R.OK): S.DOWNLOAD,
    (S.SYNC, R.NOTHING): S.IDLE,
    (S.SYNC, R.FAIL): S.IDLE,
    (S.DOWNLOAD, R.OK): S.ARTIFACT_INSTALL,
    (S.DOWNLOAD, R.FAIL): S.ARTIFACT_FAILURE,  # nothing was activated: no rollback
    (S.DOWNLOAD, R.ABORTED): S.ARTIFACT_FAILURE,
    (S.ARTIFACT_INSTALL, R.OK): S.ARTIFACT_REBOOT,
    (S.ARTIFACT_INSTALL, R.NO_REBOOT): S.ARTIFACT_COMMIT,
    (S.ARTIFACT_INSTALL, R.FAIL): S.ARTIFACT_ROLLBACK,
    (S.ARTIFACT_INSTALL, R.ABORTED): S.ARTIFACT_ROLLBACK,
    (S.ARTIFACT_REBOOT, R.OK): S.ARTIFACT_VERIFY_REBOOT,  # runs after the reboot
    (S.ARTIFACT_REBOOT, R.FAIL): S.ARTIFACT_ROLLBACK,
    (S.ARTIFACT_REBOOT, R.ABORTED): S.ARTIFACT_ROLLBACK,
    (S.ARTIFACT_VERIFY_REBOOT, R.OK): S.ARTIFACT_COMMIT,
    (S.ARTIFACT_VERIFY_REBOOT, R.FAIL): S.ARTIFACT_ROLLBACK,
    (S.ARTIFACT_VERIFY_REBOOT, R.ABORTED): S.ARTIFACT_ROLLBACK,
    (S.ARTIFACT_COMMIT, R.OK): S.CLEANUP,
    (S.ARTIFACT_COMMIT, R.FAIL): S.ARTIFACT_ROLLBACK,
    (S.ARTIFACT_COMMIT, R.ABORTED): S.ARTIFACT_ROLLBACK,
    (S.ARTIFACT_ROLLBACK, R.OK): S.ARTIFACT_ROLLBACK_REBOOT,
    (S.ARTIFACT_ROLLBACK, R.NO_REBOOT): S.ARTIFACT_FAILURE,
    (S.ARTIFACT_ROLLBACK, R.NO_ROLLBACK): S.ARTIFACT_FAILURE,
    (S.ARTIFACT_ROLLBACK, R.FAIL): S.ARTIFACT_FAILURE,
    (S.ARTIFACT_ROLLBACK_REBOOT, R.OK): S.ARTIFACT_VERIFY_ROLLBACK_REBOOT,
    (S.ARTIFACT_ROLLBACK_REBOOT, R.FAIL): S.ARTIFACT_FAILURE,
    (S.ARTIFACT_VERIFY_ROLLBACK_REBOOT, R.OK): S.ARTIFACT_FAILURE,
    (S.ARTIFACT_VERIFY_ROLLBACK_REBOOT, R.FAIL): S.ARTIFACT_FAILURE,
    (S.ARTIFACT_FAILURE, R.OK): S.CLEANUP,
    (S.ARTIFACT_FAILURE, R.FAIL): S.CLEANUP,
    (S.CLEANUP, R.OK): S.IDLE,
    (S.CLEANUP, R.FAIL): S.IDLE,
}

# Status reported to the server when a state is entered (Mender's values).
STATUS_ON_ENTER: dict[State, str] = {
    S.DOWNLOAD: "downloading",
    S.ARTIFACT_INSTALL: "installing",
    S.ARTIFACT_REBOOT: "rebooting",
    S.ARTIFACT_VERIFY_REBOOT: "installing",
    S.ARTIFACT_COMMIT: "installing",
}

# States an update can be in after a reboot or a power cut, and where it resumes.
RESUME: dict[State, State] = {
    S.DOWNLOAD: S.DOWNLOAD,  # starts over (the slot was never activated); logged as such
    S.ARTIFACT_INSTALL: S.ARTIFACT_ROLLBACK,  # half an install: undo it
    S.ARTIFACT_REBOOT: S.ARTIFACT_VERIFY_REBOOT,  # the reboot happened
    S.ARTIFACT_VERIFY_REBOOT: S.ARTIFACT_VERIFY_REBOOT,
    S.ARTIFACT_COMMIT: S.ARTIFACT_COMMIT,
    S.ARTIFACT_ROLLBACK: S.ARTIFACT_ROLLBACK,
    S.ARTIFACT_ROLLBACK_REBOOT: S.ARTIFACT_VERIFY_ROLLBACK_REBOOT,
    S.ARTIFACT_VERIFY_ROLLBACK_REBOOT: S.ARTIFACT_VERIFY_ROLLBACK_REBOOT,
    S.ARTIFACT_FAILURE: S.ARTIFACT_FAILURE,
    S.CLEANUP: S.CLEANUP,
}


def next_state(state: State, outcome: Outcome) -> State:
    try:
        return TRANSITIONS[(state, outcome)]
    except KeyError:
        raise ValueError(f"no transition from {state} on {outcome}") from None
