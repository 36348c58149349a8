"""The standalone state sequence after Download, as mender 3.4 runs it (docs/agent.md).

Each phase is written to the store before it starts; COMMIT, ROLLBACK and
FAILURE are safe to run again after a power cut, so recovery simply re-enters
the recorded phase. Script and module failures on the way back (rollback,
failure) are logged and the sequence goes on, like mender; a boot env error
stops it with the phase still recorded, so the next command tries again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from .errors import AgentError, ModuleError, ScriptError, UpdateError
from .payloads.base import Installer
from .payloads.rootfs import RolledBack, RootfsInstaller
from .scripts import ScriptRunner
from .store import InFlight, Phase, Store

log = logging.getLogger(__name__)

INCONSISTENT = "_INCONSISTENT"


@dataclass
class Flow:
    """One update in flight and what acts on it."""

    store: Store
    update: InFlight
    installer: Installer
    scripts: ScriptRunner

    def enter(self, phase: Phase, **changes: object) -> None:
        self.update = self.store.update(replace(self.update, phase=phase, **changes))  # type: ignore[arg-type]
        log.info("phase", extra={"state": str(phase), "artifact": self.update.artifact_name})

    def _soft(self, what: str, action) -> str | None:
        """Run a step of the way back; a script or module failure is logged, not raised."""
        try:
            action()
        except (ModuleError, ScriptError) as err:
            log.warning("%s failed: %s", what, err)
            return str(err)
        return None

    def fail(self, reason: str, rollback: bool | None = None) -> None:
        """Failure path: [rollback] -> ArtifactFailure -> Cleanup; records the failure."""
        if self.update.phase != Phase.FAILURE:
            self.enter(Phase.FAILURE)
        if rollback is None:
            rollback = bool(self.update.supports_rollback)
        if rollback and self.installer.supports_rollback():
            self._rollback_states()
        s = self.scripts
        self._soft("ArtifactFailure_Enter", lambda: s.run("ArtifactFailure", "Enter", True))
        self._soft("ArtifactFailure", self.installer.failure)
        self._soft("ArtifactFailure_Leave", lambda: s.run("ArtifactFailure", "Leave", True))
        self._soft("Cleanup", self.installer.cleanup)
        self.store.finish(self.update, "failure", reason, None)
        log.info("update failed", extra={"artifact": self.update.artifact_name, "reason": reason})

    def _rollback_states(self) -> None:
        s = self.scripts
        self._soft("ArtifactRollback_Enter", lambda: s.run("ArtifactRollback", "Enter", True))
        self._soft("ArtifactRollback", self.installer.rollback)
        self._soft("ArtifactRollback_Leave", lambda: s.run("ArtifactRollback", "Leave", True))

    def rollback_states(self) -> None:
        """ArtifactRollback alone: the daemon reboots before ArtifactFailure (mender's order)."""
        self._rollback_states()

    def rollback(self) -> None:
        """User rollback: SupportsRollback -> ArtifactRollback states -> Cleanup."""
        if not self.installer.supports_rollback():
            raise UpdateError(
                f"payload {self.update.payload_type} does not support rollback: commit it instead"
            )
        if self.update.phase != Phase.ROLLBACK:
            self.enter(Phase.ROLLBACK)
        self._rollback_states()
        self._soft("Cleanup", self.installer.cleanup)
        self.store.finish(self.update, "rolled back", "rolled back on request", None)

    def check_commit(self) -> None:
        """Refuse to enter COMMIT when the rootfs was not booted (or was rolled back)."""
        installer = self.installer
        if not isinstance(installer, RootfsInstaller):
            return
        if installer.rolled_back_by_bootloader():
            reason = (
                f"the bootloader rolled back to slot {installer.old.label}:"
                f" {self.update.artifact_name} did not boot"
            )
            self.fail(reason, rollback=False)
            raise RolledBack(reason)
        installer.commit_precondition()

    def commit(self) -> None:
        """ArtifactCommit_Enter -> ArtifactCommit -> ArtifactCommit_Leave -> Cleanup."""
        if self.update.phase != Phase.COMMIT:
            self.check_commit()
            self.enter(Phase.COMMIT)
        s = self.scripts
        try:
            s.run("ArtifactCommit", "Enter")
            self.installer.commit()
        except AgentError as err:
            s.run("ArtifactCommit", "Error", ignore_errors=True)
            self.fail(str(err))
            raise
        provides = dict(self.update.new_provides)
        leave_error = self._soft("ArtifactCommit_Leave", lambda: s.run("ArtifactCommit", "Leave"))
        if leave_error is not None:
            # too late to go back: say so in the name, as mender does
            provides["artifact_name"] += INCONSISTENT
        self._soft("Cleanup", self.installer.cleanup)
        self.store.finish(self.update, "success", leave_error or "", provides)
