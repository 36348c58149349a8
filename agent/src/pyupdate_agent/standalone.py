"""`commit`, `rollback`, and recovery of an update a power cut interrupted.

Recovery re-enters the recorded phase (store.Phase): an interrupted Download or
ArtifactInstall is undone (failure path), an interrupted commit, rollback or
failure path is run again to its end. When a rootfs update waits for commit
but the bootloader has gone back to the old slot, the update is recorded as
failed and the old artifact stays current (docs/boot-env.md).
"""

from __future__ import annotations

from pathlib import Path

from .device import Device
from .errors import NothingInProgress, UpdateError
from .flow import Flow
from .log import deployment_log
from .payloads.rootfs import RolledBack, RootfsInstaller
from .store import InFlight, Phase, Store

UNDONE = (Phase.DOWNLOAD, Phase.INSTALL, Phase.FAILURE)


def _flow(device: Device, store: Store, update: InFlight) -> Flow:
    return Flow(store, update, device.installer_for(update), device.scripts())


def _bootloader_gave_up(flow: Flow) -> bool:
    installer = flow.installer
    return isinstance(installer, RootfsInstaller) and installer.rolled_back_by_bootloader()


def _gave_up_reason(flow: Flow) -> str:
    installer = flow.installer
    assert isinstance(installer, RootfsInstaller)
    return (
        f"the bootloader rolled back to slot {installer.old.label}:"
        f" {flow.update.artifact_name} did not boot"
    )


def _undo(flow: Flow) -> None:
    phase = flow.update.phase
    reason = f"interrupted during {phase}; rolled back"
    # a Download never activated anything, so only the failure states run
    flow.fail(reason, rollback=None if phase != Phase.DOWNLOAD else False)


def recover(device: Device, store: Store) -> str | None:
    """Finish or undo an interrupted update; returns what happened, None if nothing."""
    update = store.inflight()
    if update is None:
        return None
    flow = _flow(device, store, update)
    with deployment_log(Path(update.log_path)):
        if update.phase in UNDONE:
            _undo(flow)
            return f"rolled back interrupted update of {update.artifact_name}"
        if update.phase == Phase.ROLLBACK:
            flow.rollback()
            return f"rolled back {update.artifact_name}"
        if update.phase == Phase.COMMIT:
            flow.commit()
            return f"committed {update.artifact_name}"
        if _bootloader_gave_up(flow):
            flow.fail(_gave_up_reason(flow), rollback=False)
            return f"update of {update.artifact_name} failed: the bootloader rolled back"
    return None


def commit(device: Device, store: Store) -> str:
    update = store.inflight()
    if update is None:
        raise NothingInProgress("nothing to commit: no update in progress")
    flow = _flow(device, store, update)
    if update.phase in UNDONE or update.phase == Phase.ROLLBACK:
        recover(device, store)
        raise UpdateError(
            f"the update of {update.artifact_name} was interrupted ({update.phase})"
            " and has been rolled back; nothing to commit"
        )
    with deployment_log(Path(update.log_path)):
        try:
            flow.commit()
        except RolledBack:
            raise
    return update.artifact_name


def rollback(device: Device, store: Store) -> str:
    update = store.inflight()
    if update is None:
        raise NothingInProgress("nothing to roll back: no update in progress")
    if update.phase in UNDONE:
        recover(device, store)
        return update.artifact_name
    flow = _flow(device, store, update)
    with deployment_log(Path(update.log_path)):
        if update.phase == Phase.INSTALLED and _bootloader_gave_up(flow):
            flow.fail(_gave_up_reason(flow), rollback=False)
        else:
            flow.rollback()
    return update.artifact_name
