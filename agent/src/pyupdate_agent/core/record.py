"""The one record of an update: where the machine is, and what it acts on (plain data).

The store (store.py) keeps it in one SQLite row pair, `machine` and `inflight`,
written in one transaction, so the state of the machine and the phase of the
update can never disagree after a power cut. Every resume decision reads it
(states.RESUME).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .names import State


class Phase(StrEnum):
    """The coarse phase of an update in flight, written with each state (states.phase_of).

    DOWNLOAD and INSTALL may be half done when interrupted: recovery undoes them.
    DOWNLOADED waits for `install --resume`, `rollback` or the install window.
    INSTALLED waits for `commit` or `rollback` (or the reboot). COMMIT, ROLLBACK
    and FAILURE are idempotent: recovery runs them again to the end.
    """

    DOWNLOAD = "download"
    DOWNLOADED = "downloaded"
    INSTALL = "install"
    INSTALLED = "installed"
    COMMIT = "commit"
    ROLLBACK = "rollback"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class InFlight:
    """The update the device is in the middle of.

    Args:
        update_id: random id, also names the deployment log.
        payload_type: `rootfs-image` or an update module's name.
        supports_rollback / needs_reboot: the installer's answers, once asked.
        old_slot / new_slot: partition numbers for rootfs-image, None otherwise.
        new_provides: what the device will provide once committed (computed at install).
    """

    update_id: str
    artifact_name: str
    payload_type: str
    phase: Phase
    new_provides: dict[str, str]
    log_path: str
    supports_rollback: bool | None = None
    needs_reboot: str | None = None
    old_slot: int | None = None
    new_slot: int | None = None
    started: float = 0.0


@dataclass(frozen=True, slots=True)
class Deployment:
    """What the server handed out (managed mode). `install_window`: the deployment's
    `install_window` (docs/device-api.md) as `HH:MM-HH:MM`, None when it has none.
    `full_source`: for a delta artifact, the link to the full one, installed instead when
    the delta's base does not match the running slot (docs/agent.md, "Delta updates")."""

    id: str
    artifact_name: str
    uri: str
    device_types: tuple[str, ...]
    install_window: str | None = None
    full_source: str | None = None

    def as_dict(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "id": self.id,
            "artifact_name": self.artifact_name,
            "uri": self.uri,
            "device_types": list(self.device_types),
        }
        if self.install_window is not None:
            doc["install_window"] = self.install_window
        if self.full_source is not None:
            doc["full_source"] = self.full_source
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, object]) -> Deployment:
        types = doc["device_types"]
        assert isinstance(types, list)
        window = doc.get("install_window")
        full = doc.get("full_source")
        return cls(
            str(doc["id"]),
            str(doc["artifact_name"]),
            str(doc["uri"]),
            tuple(types),
            None if window is None else str(window),
            None if full is None else str(full),
        )


@dataclass(frozen=True, slots=True)
class Record:
    """Args:
    state: the state about to run (or running).
    update: the update in flight (the store's `inflight` row), None before the
        artifact's header was accepted and after the update ended.
    deployment: what the server handed out; None for `pyupdate install` (standalone).
    log_path: the deployment log of the update, once recorded.
    reason: why the update failed (reported with the log); for a success, why it is
        inconsistent (ArtifactCommit_Leave failed); empty for a rollback on request.
    rebooted: the reboot into the update was started (decides the rollback reboot).
    restarts: agent restarts during Download (each starts the download over).
    retry: the download starts over once this attempt's failure path has run.
    commit_deadline: wall-clock time after which an unreachable server means rollback.
    success_reported: the server took `success`: the commit may run.
    aborted: the server answered 409; nothing more is reported.
    final: the result once decided (`success`, `failure`, `rolled back`); in managed
        mode kept until the server has it.
    """

    state: State
    update: InFlight | None = None
    deployment: Deployment | None = None
    log_path: str | None = None
    reason: str = ""
    rebooted: bool = False
    restarts: int = 0
    retry: bool = False
    commit_deadline: float | None = None
    success_reported: bool = False
    aborted: bool = False
    final: str | None = None

    @property
    def managed(self) -> bool:
        return self.deployment is not None

    @property
    def worth_keeping(self) -> bool:
        """Something to resume or to report: an update in flight or a deployment in hand."""
        return self.update is not None or self.deployment is not None

    @classmethod
    def from_legacy(cls, doc: dict[str, object]) -> Record:
        """The daemon's record as `<data>/daemon-state.json` held it (before store schema 2)."""
        deadline = doc.get("commit_deadline")
        final = doc.get("final")
        return cls(
            state=State(doc["state"]),
            deployment=Deployment.from_dict(doc["deployment"]),  # type: ignore[arg-type]
            log_path=None if doc.get("log_path") is None else str(doc["log_path"]),
            reason=str(doc.get("reason") or ""),
            rebooted=bool(doc.get("rebooted")),
            restarts=int(doc.get("restarts") or 0),  # type: ignore[call-overload]
            commit_deadline=None if deadline is None else float(deadline),  # type: ignore[arg-type]
            success_reported=bool(doc.get("success_reported")),
            aborted=bool(doc.get("aborted")),
            final=None if final is None else str(final),
        )

    @classmethod
    def from_phase(cls, update: InFlight) -> Record:
        """An update recorded by an agent older than the machine row (standalone): the
        state it resumes from follows from its phase."""
        if update.phase == Phase.FAILURE:  # the failure path, rollback included, again
            return cls(
                State.ARTIFACT_ROLLBACK,
                update=update,
                log_path=update.log_path,
                reason="interrupted during failure; rolled back",
            )
        state = {
            Phase.DOWNLOAD: State.DOWNLOAD,
            Phase.DOWNLOADED: State.DOWNLOADED,
            Phase.INSTALL: State.ARTIFACT_INSTALL,
            Phase.INSTALLED: State.INSTALLED,
            Phase.COMMIT: State.ARTIFACT_COMMIT,
            Phase.ROLLBACK: State.ARTIFACT_ROLLBACK,
        }[update.phase]
        return cls(state, update=update, log_path=update.log_path)
