"""`pyupdate install | commit | rollback`: the table (core/states.py) in standalone mode.

`install` runs Download and ArtifactInstall and stops in Installed, where the
update waits; `commit` and `rollback` are that state's commands. Each command
first finishes or undoes an update a power cut interrupted, from the one
record in the store (core/states.RESUME): an interrupted Download or
ArtifactInstall is undone, a commit, rollback or failure path runs again to its
end. When a rootfs update waits for commit but the bootloader went back to the
old slot, the update is recorded as failed (docs/boot-env.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from .core.record import Record
from .core.runner import Context, Machine
from .core.states import Mode, Outcome, State
from .core.steps import Steps
from .device import Device
from .errors import NothingInProgress, UpdateError
from .store import Store


@dataclass(frozen=True, slots=True)
class InstallResult:
    artifact_name: str
    committed: bool
    needs_reboot: str  # No, Yes, Automatic


def _machine(
    device: Device,
    store: Store,
    record: Record,
    source: str | BinaryIO | None = None,
    command: Outcome | None = None,
) -> tuple[Machine, Context]:
    ctx = Context(store, device.scripts(), Mode.STANDALONE, record)
    return Machine(ctx, Steps(ctx, device, source=source, command=command)), ctx


def _load(store: Store) -> Record | None:
    record = store.load()
    if record is not None and record.deployment is not None:
        raise UpdateError(
            f"deployment {record.deployment.id} ({record.deployment.artifact_name}) is in the"
            " hands of `pyupdate daemon`: let it finish"
        )
    return record


def recover(device: Device, store: Store) -> str | None:
    """Finish or undo an interrupted update; returns what happened, None if nothing."""
    record = _load(store)
    if record is None or record.update is None:
        return None
    name = record.update.artifact_name
    machine, ctx = _machine(device, store, record)
    if machine.resume(record) is State.INSTALLED:
        return None  # still waits for commit or rollback
    if ctx.result == "success":
        return f"committed {name}"
    if ctx.result == "rolled back":
        return f"rolled back {name}"
    if record.state is State.INSTALLED:
        return f"update of {name} failed: the bootloader rolled back"
    return f"rolled back interrupted update of {name}"


def install(device: Device, store: Store, source: str | BinaryIO) -> InstallResult:
    """Install `source` (a path, a URL or an open stream); raises AgentError with one line."""
    machine, ctx = _machine(device, store, Record(State.DOWNLOAD), source=source)
    if machine.run(State.DOWNLOAD) is State.INSTALLED:
        assert ctx.record is not None and ctx.record.update is not None
        update = ctx.record.update
        return InstallResult(update.artifact_name, False, update.needs_reboot or "No")
    if ctx.result == "success" and ctx.finished is not None:
        return InstallResult(ctx.finished.artifact_name, True, ctx.finished.needs_reboot or "No")
    raise ctx.error or UpdateError(ctx.record.reason if ctx.record else "the update failed")


def commit(device: Device, store: Store) -> str:
    record = _load(store)
    if record is None or record.update is None:
        raise NothingInProgress("nothing to commit: no update in progress")
    update = record.update
    if record.state is State.INSTALLED:
        machine, ctx = _machine(device, store, record, command=Outcome.COMMIT)
        machine.run(State.INSTALLED, resumed=True)
    else:  # interrupted: finish or undo it first
        machine, ctx = _machine(device, store, record)
        machine.resume(record)
        if ctx.result != "success" and record.state is not State.ARTIFACT_COMMIT:
            raise UpdateError(
                f"the update of {update.artifact_name} was interrupted ({update.phase})"
                " and has been rolled back; nothing to commit"
            )
    if ctx.result == "success":
        return update.artifact_name
    raise ctx.error or UpdateError(f"the commit of {update.artifact_name} failed")


def rollback(device: Device, store: Store) -> str:
    record = _load(store)
    if record is None or record.update is None:
        raise NothingInProgress("nothing to roll back: no update in progress")
    name = record.update.artifact_name
    if record.state is State.INSTALLED:
        machine, ctx = _machine(device, store, record, command=Outcome.ROLLBACK)
        machine.run(State.INSTALLED, resumed=True)
    else:  # interrupted: finish or undo it first
        machine, ctx = _machine(device, store, record)
        machine.resume(record)
    if ctx.result == "success":
        raise UpdateError(f"the interrupted commit of {name} was finished: nothing to roll back")
    return name
