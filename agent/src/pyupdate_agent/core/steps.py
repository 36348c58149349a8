"""The update's actions, one per `Do` of the table (states.py), for both modes.

Each acts on the record in `Context` and on the payload's installer, and
returns nothing or an outcome for the table. None runs a state script or
reports a status (the table does), and none moves the machine. What only
managed mode has (the server's download link, RebootCommand) comes through
`Managed`; standalone mode has none and never reaches the states that need it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from ..errors import AgentError, BaseMismatch, UpdateError
from ..log import deployment_log
from ..payloads.base import Installer
from ..payloads.delta import SLOT_PAYLOADS
from ..payloads.rootfs import RootfsInstaller
from .errors import Refused
from .record import InFlight, Record
from .runner import Context
from .states import Outcome

if TYPE_CHECKING:
    from ..device import Device
    from ..install import Prepared

log = logging.getLogger(__name__)

INCONSISTENT = "_INCONSISTENT"


class Managed(Protocol):
    """What the daemon lends the steps."""

    def open_download(self, uri: str) -> BinaryIO: ...

    def reboot(self, what: str) -> None:
        """Run RebootCommand; returns only if the device did not go down (AgentError)."""
        ...


class Steps:
    """Args:
    ctx: the record and the store.
    device: config, env, slots, installers.
    managed: the daemon's part; None standalone.
    source: what `pyupdate install` was given (a path, URL or stream).
    command: `pyupdate commit`, `rollback` or `install --resume` (Outcome.COMMIT /
        ROLLBACK / INSTALL), if any.
    download_only: `pyupdate install --download-only`: the update waits in Downloaded.
    """

    def __init__(
        self,
        ctx: Context,
        device: Device,
        managed: Managed | None = None,
        source: str | BinaryIO | None = None,
        command: Outcome | None = None,
        download_only: bool = False,
    ) -> None:
        self.ctx = ctx
        self.device = device
        self.managed = managed
        self.source = source
        self.command = command
        self.download_only = download_only
        self._installer: Installer | None = None
        self._runs_new = False

    # -- Actions (runner.py) --------------------------------------------------------
    def do(self, name: str) -> Outcome | None:
        return getattr(self, name)()  # type: ignore[no-any-return]

    def report(self, status: str) -> None:
        """Standalone mode reports nothing (the runner does not ask)."""

    def when(self, name: str) -> bool:
        return False

    # -- what the actions act on ----------------------------------------------------
    @property
    def record(self) -> Record:
        assert self.ctx.record is not None
        return self.ctx.record

    @property
    def update(self) -> InFlight:
        update = self.record.update
        assert update is not None
        return update

    @property
    def installer(self) -> Installer:
        if self._installer is None:
            self._installer = self.device.installer_for(self.update)
        return self._installer

    def _check_fell_back(self) -> None:
        """RolledBack if the bootloader gave up on a rootfs update (the rule: bootenv/base.py)."""
        if isinstance(self.installer, RootfsInstaller):
            self.installer.check_not_fallen_back(self.update.artifact_name)

    def _answer(self, **changes: object) -> None:
        self.ctx.set(update=replace(self.update, **changes))  # type: ignore[arg-type]

    # -- Download and ArtifactInstall -----------------------------------------------
    def download(self) -> None:
        from ..install import prepare, stream_payload

        record = self.ctx.set(retry=False)  # this attempt's failure is final
        if self.managed is not None:
            assert record.deployment is not None
            source: str | BinaryIO = self.managed.open_download(record.deployment.uri)
        else:
            assert self.source is not None
            source = self.source
        prepared = prepare(self.device, self.ctx.store, source, record.deployment)
        update = self._begin(prepared)
        if record.restarts:
            with deployment_log(Path(update.log_path)):
                log.warning(
                    "the agent restarted during the download: the download starts over",
                    extra={"restarts": record.restarts},
                )
        try:
            stream_payload(self.device, prepared)
        except BaseMismatch as err:
            full = record.deployment.full_source if record.deployment else None
            if full is None or self.managed is None:
                raise
            self._install_full(full, update, err)

    def _begin(self, prepared: Prepared) -> InFlight:
        """Record the update, with the machine's record, before the first payload byte
        is written: a power cut from here on is found by the next start."""
        try:
            record = replace(self.record, log_path=prepared.update.log_path)
            update = self.ctx.store.begin(prepared.update, record)
        except BaseException:
            prepared.stream.close()
            raise
        self.ctx.record = replace(record, update=update)
        self._installer = prepared.installer
        return update

    def _install_full(self, uri: str, delta: InFlight, err: BaseMismatch) -> None:
        """The delta's base is not the running slot (nothing was written): the same
        deployment from its full artifact, under the same update id and log. The delta's
        record is dropped first; a power cut after that is an interrupted download like
        any other (the retry meets the mismatch again and comes back here)."""
        from ..install import prepare, stream_payload

        assert self.managed is not None and self.record.deployment is not None
        with deployment_log(Path(delta.log_path)):
            log.warning(
                "base does not match the delta: installing the full artifact",
                extra={"artifact": delta.artifact_name, "error": str(err)},
            )
        self.ctx.record = self.ctx.store.drop_update(delta, replace(self.record, update=None))
        self._installer = None
        source = self.managed.open_download(uri)
        deployment = self.record.deployment
        prepared = prepare(self.device, self.ctx.store, source, deployment, delta.update_id)
        # one deployment, one log: the line above and the full install's, uploaded together
        prepared = replace(prepared, update=replace(prepared.update, log_path=delta.log_path))
        self._begin(prepared)
        stream_payload(self.device, prepared)

    def supports_rollback(self) -> None:
        self._answer(supports_rollback=self.installer.supports_rollback())

    # -- Downloaded: the install waits (standalone: for a command) ---------------------
    def hold_install(self) -> Outcome | None:
        """Standalone: `--download-only` stops before ArtifactInstall (the daemon has its own:
        the install window, daemon/machine.py)."""
        return Outcome.PAUSE if self.download_only else None

    def await_install(self) -> Outcome:
        if self.command is Outcome.INSTALL:
            return Outcome.INSTALL
        if self.command is Outcome.ROLLBACK:
            # nothing was activated: no ArtifactRollback, no failure; Cleanup drops the files
            self.ctx.set(final="rolled back", reason="downloaded, dropped before the install")
            return Outcome.ROLLBACK
        return Outcome.WAIT

    def install(self) -> None:
        self.installer.install()

    def needs_reboot(self) -> Outcome | None:
        answer = self.installer.needs_reboot()
        self._answer(needs_reboot=answer)
        return Outcome.NO_REBOOT if answer == "No" else None

    # -- Installed: standalone waits for a command -----------------------------------
    def await_command(self) -> Outcome:
        self._check_fell_back()
        if self.command is Outcome.COMMIT:
            if isinstance(self.installer, RootfsInstaller):
                try:
                    self.installer.commit_precondition()
                except UpdateError as err:
                    raise Refused(str(err)) from None
            return Outcome.COMMIT
        if self.command is Outcome.ROLLBACK:
            if not self.installer.supports_rollback():
                raise Refused(
                    f"payload {self.update.payload_type} does not support rollback:"
                    " commit it instead"
                )
            return Outcome.ROLLBACK
        if not self.update.supports_rollback:
            return Outcome.COMMIT  # no way back: mender commits such payloads at once
        return Outcome.WAIT

    # -- managed: the reboot and what follows -------------------------------------------
    def _own_reboot(self) -> bool:
        """A module that answered NeedsArtifactReboot `Yes` reboots in its own state."""
        return self.update.payload_type not in SLOT_PAYLOADS and self.update.needs_reboot == "Yes"

    def reboot(self) -> None:
        self.ctx.save(rebooted=True)
        if self._own_reboot():
            self.installer.reboot()  # type: ignore[attr-defined]
            return
        assert self.managed is not None
        self.managed.reboot("reboot")

    def verify_reboot(self) -> None:
        self._check_fell_back()
        if isinstance(self.installer, RootfsInstaller):
            self.installer.commit_precondition()
        else:
            self.installer.verify_reboot()  # type: ignore[attr-defined]

    # -- ArtifactCommit ------------------------------------------------------------------
    def check_commit(self) -> None:
        """A power cut while the trial was not yet confirmed may make the bootloader fall
        back: then the commit must not go on (resuming ArtifactCommit)."""
        self._check_fell_back()

    def commit(self) -> None:
        self.installer.commit()
        self.ctx.set(final="success")
        log.info("committed", extra={"artifact": self.update.artifact_name})

    # -- the way back ----------------------------------------------------------------------
    def _on_request(self) -> bool:
        return not self.record.reason

    def check_rollback(self) -> Outcome | None:
        """On a failure: SupportsRollback (as recorded, then asked); and did the new system run?"""
        record = self.record
        if self._on_request():
            return None  # asked already (Installed)
        update = record.update
        if update is None or not update.supports_rollback:
            return Outcome.NO_ROLLBACK
        if not self.installer.supports_rollback():
            return Outcome.NO_ROLLBACK
        installer = self.installer
        if isinstance(installer, RootfsInstaller):
            try:
                self._runs_new = installer.runs_new()
            except AgentError:
                self._runs_new = True  # unsure: reboot, the env decides
        else:
            self._runs_new = record.rebooted and update.needs_reboot in ("Yes", "Automatic")
        return None

    def rollback(self) -> None:
        self.installer.rollback()

    def rolled_back(self) -> Outcome:
        if self._on_request():
            self.ctx.set(final="rolled back", reason="rolled back on request")
            return Outcome.ON_REQUEST
        return Outcome.OK if self._runs_new else Outcome.NO_REBOOT

    def rollback_reboot(self) -> None:
        try:
            if self.record.update is not None and self._own_reboot():
                self.installer.rollback_reboot()  # type: ignore[attr-defined]
            else:
                assert self.managed is not None
                self.managed.reboot("rollback_reboot")
        except AgentError as err:
            log.warning("the rollback reboot failed: %s; the old system runs", err)

    def verify_rollback_reboot(self) -> None:
        if self.record.update is None or isinstance(self.installer, RootfsInstaller):
            return
        try:
            self.installer.verify_rollback_reboot()  # type: ignore[attr-defined]
        except AgentError as err:
            log.warning("ArtifactVerifyRollbackReboot failed: %s", err)

    def failure(self) -> None:
        self.ctx.set(final="failure", reason=self.record.reason or "the update failed")
        if self.record.update is not None:
            self.installer.failure()

    # -- Cleanup -------------------------------------------------------------------------
    def cleanup(self) -> Outcome | None:
        """Cleanup, then the end of the update: result, provides, history and record at once."""
        ctx = self.ctx
        record = self.record
        update = record.update
        ctx.result = record.final
        if update is not None:
            try:
                self.installer.cleanup()
            except AgentError as err:
                log.warning("Cleanup failed: %s", err)
            result = record.final or "failure"
            provides = None
            if result == "success":
                provides = dict(update.new_provides)
                if record.reason:  # ArtifactCommit_Leave failed after the commit
                    provides["artifact_name"] += INCONSISTENT
            keep = replace(record, update=None, final=result) if record.managed else None
            ctx.store.finish(update, result, record.reason, provides, keep)
            ctx.record, ctx.result, ctx.finished = keep, result, update
            log.info(
                "update finished",
                extra={"artifact": update.artifact_name, "result": result, "reason": record.reason},
            )
        if record.retry:
            ctx.record = Record(
                record.state, deployment=record.deployment, restarts=record.restarts, retry=True
            )
            return Outcome.RETRY
        return None
