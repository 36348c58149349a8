"""The names of the update's states, of the outcomes of its steps, and of the modes.

Apart from the table (states.py) so that the record and the store, which every
verb loads, name a state without building the table.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    IDLE = "Idle"
    SYNC = "Sync"  # inventory update and deployment check
    DOWNLOAD = "Download"  # streams the artifact into the inactive slot (or module)
    DOWNLOADED = "Downloaded"  # waits to install: `install --resume`, or the install window
    ARTIFACT_INSTALL = "ArtifactInstall"  # switches the bootloader / module install
    INSTALLED = "Installed"  # standalone: waits for `pyupdate commit` or `rollback`
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
    FAIL = "fail"  # a step failed: the row's error scripts ran
    NOTHING = "nothing"  # no deployment due, or already installed
    NO_REBOOT = "no-reboot"  # the payload needs no reboot (or no rollback reboot)
    NO_ROLLBACK = "no-rollback"  # the payload cannot roll back (or nothing was activated)
    ABORTED = "aborted"  # the server answered 409: the deployment was aborted
    WAIT = "wait"  # standalone: the command ends here, the update waits for the next one
    COMMIT = "commit"  # `pyupdate commit` (or at once: the payload cannot roll back)
    ROLLBACK = "rollback"  # `pyupdate rollback`
    ON_REQUEST = "on-request"  # rolled back on request: no failure to record
    RETRY = "retry"  # the interrupted download's failure path ran: start over
    PAUSE = "pause"  # the install waits: `install --download-only`, or outside the window
    INSTALL = "install"  # `pyupdate install --resume`, or the install window opened


class Mode(StrEnum):
    STANDALONE = "standalone"  # `pyupdate install | commit | rollback`
    MANAGED = "managed"  # `pyupdate daemon`
