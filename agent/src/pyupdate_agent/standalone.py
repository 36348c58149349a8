"""`pyupdate install | commit | rollback`: the table (core/states.py) in standalone mode.

`install` runs Download and ArtifactInstall and stops in Installed, where the
update waits; `commit` and `rollback` are that state's commands. `install
--download-only` stops in Downloaded instead (nothing activated), where
`install --resume` goes on with ArtifactInstall and `rollback` drops the
download. Each command
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

# where an update waits for the next command
WAITING = (State.DOWNLOADED, State.INSTALLED)


@dataclass(frozen=True, slots=True)
class InstallResult:
    artifact_name: str
    committed: bool
    needs_reboot: str  # No, Yes, Automatic
    downloaded: bool = False  # `--download-only`: waits for `install --resume`


def _machine(
    device: Device,
    store: Store,
    record: Record,
    source: str | BinaryIO | None = None,
    command: Outcome | None = None,
    download_only: bool = False,
) -> tuple[Machine, Context]:
    ctx = Context(store, device.scripts(), Mode.STANDALONE, record)
    steps = Steps(ctx, device, source=source, command=command, download_only=download_only)
    return Machine(ctx, steps), ctx


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
    if machine.resume(record) in WAITING:
        return None  # still waits for a command
    if ctx.result == "success":
        return f"committed {name}"
    if ctx.result == "rolled back":
        return f"rolled back {name}"
    if record.state is State.INSTALLED:
        return f"update of {name} failed: the bootloader rolled back"
    return f"rolled back interrupted update of {name}"


def waiting(record: Record | None) -> str | None:
    """The one line refusing a new install while `record`'s update waits, or None."""
    if record is None or record.update is None:
        return None
    name = record.update.artifact_name
    if record.state is State.DOWNLOADED:
        return (
            f"update of {name} is downloaded and waits: 'pyupdate install --resume' or"
            " 'pyupdate rollback' first"
        )
    return f"update of {name} is in progress: commit or roll back first"


def install(
    device: Device, store: Store, source: str | BinaryIO, download_only: bool = False
) -> InstallResult:
    """Install `source` (a path, a URL or an open stream); raises AgentError with one line.
    `download_only`: stop in Downloaded (InstallResult.downloaded)."""
    machine, ctx = _machine(
        device, store, Record(State.DOWNLOAD), source=source, download_only=download_only
    )
    return _result(machine.run(State.DOWNLOAD), ctx)


def resume_install(device: Device, store: Store) -> InstallResult:
    """`install --resume`: ArtifactInstall onward for the update waiting in Downloaded."""
    record = _load(store)
    if record is None or record.update is None:
        raise NothingInProgress("nothing to resume: no downloaded update waits")
    if record.state is not State.DOWNLOADED:
        raise UpdateError(
            f"update of {record.update.artifact_name} is already installed: commit or roll back"
        )
    machine, ctx = _machine(device, store, record, command=Outcome.INSTALL)
    return _result(machine.run(State.DOWNLOADED, resumed=True), ctx)


def _result(state: State, ctx: Context) -> InstallResult:
    if state in WAITING:
        assert ctx.record is not None and ctx.record.update is not None
        update = ctx.record.update
        downloaded = state is State.DOWNLOADED
        return InstallResult(update.artifact_name, False, update.needs_reboot or "No", downloaded)
    if ctx.result == "success" and ctx.finished is not None:
        return InstallResult(ctx.finished.artifact_name, True, ctx.finished.needs_reboot or "No")
    raise ctx.error or UpdateError(ctx.record.reason if ctx.record else "the update failed")


def commit(device: Device, store: Store) -> str:
    record = _load(store)
    if record is None or record.update is None:
        raise NothingInProgress("nothing to commit: no update in progress")
    update = record.update
    if record.state is State.DOWNLOADED:
        raise UpdateError(
            f"{update.artifact_name} is downloaded, not installed: run 'pyupdate install"
            " --resume' first"
        )
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
    """Roll back the installed update, or drop the downloaded one; returns its name."""
    record = _load(store)
    if record is None or record.update is None:
        raise NothingInProgress("nothing to roll back: no update in progress")
    name = record.update.artifact_name
    if record.state in WAITING:
        machine, ctx = _machine(device, store, record, command=Outcome.ROLLBACK)
        machine.run(record.state, resumed=True)
    else:  # interrupted: finish or undo it first
        machine, ctx = _machine(device, store, record)
        machine.resume(record)
    if ctx.result == "success":
        raise UpdateError(f"the interrupted commit of {name} was finished: nothing to roll back")
    return name
