"""Runs the transition table (states.py): one handler per state, each returns an Outcome.

Before a state of an update runs, the record (record.py) is written with that
state, so a reboot or a power cut resumes at a known place. Idle and Sync are
not written: nothing is half done there, and a poll loop that fsyncs every few
seconds would wear flash for nothing. The update itself runs through the
standalone code (install.py, flow.py, the store): the daemon adds the server
(status at each step, the log on failure), the reboot and the commit rule:
commit only after `success` reached the server, roll back when it cannot be
reached before CommitReportDeadlineSeconds (docs/agent.md, "Managed mode").

Idle imports nothing heavy: the artifact library and the installers are
imported when a deployment arrives, and the device key lives in a child
process (keytool.py), so the idle daemon stays small (bench/agent.py).
"""

from __future__ import annotations

import logging
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .. import __version__
from ..config import Config, read_device_type
from ..errors import AgentError, ScriptError
from ..provides import current_provides
from ..scripts import ScriptRunner, ScriptSettings
from ..store import Phase, Store
from .client import Deployment, DeploymentAborted, DeviceClient, ServerError, Unauthorized
from .identity import IdentityError, identity_data, identity_script, inventory
from .keytool import ChildKey
from .record import Record, clear_record, load_record, save_record
from .settings import DaemonSettings
from .states import RESUME, STATUS_ON_ENTER, Outcome, State, next_state

log = logging.getLogger(__name__)

WAKE = {signal.SIGUSR1: "update", signal.SIGUSR2: "inventory"}
TOKEN_MARGIN = 60  # re-authenticate this long before the token expires


class Daemon:
    """Args:
    config, data_dir: as for the standalone commands.
    settings: daemon_settings(config, data_dir).
    reexec: argv to exec after an update, to drop the installer's memory (None: never).
    """

    def __init__(
        self,
        config: Config,
        data_dir: Path,
        settings: DaemonSettings,
        reexec: list[str] | None = None,
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.s = settings
        self.reexec = reexec
        self.client = DeviceClient(
            settings.server_url,
            ca_file=config.server_certificate,
            skip_verify=config.skip_verify,
            timeout=settings.request_timeout,
        )
        self.key = ChildKey(settings.key_path, settings.key_type)
        store = Store.open(data_dir, create=True)
        assert store is not None
        self.store = store
        self.scripts = ScriptRunner(
            [Path(d) for d in config.scripts_dirs],
            data_dir / "scripts",
            ScriptSettings(
                config.state_script_timeout_seconds,
                config.state_script_retry_timeout_seconds,
                config.state_script_retry_interval_seconds,
            ),
        )
        self.record: Record | None = load_record(data_dir)
        self._id_data: str | None = None
        self.next_update = 0.0
        self.next_inventory = 0.0
        self.retry_at = 0.0
        self.failures = 0

    # -- the loop ------------------------------------------------------------
    def run(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, set(WAKE))
        state = self._resume()
        while True:
            outcome = HANDLERS[state](self)
            # a handler may have moved the record on (Download enters ArtifactInstall)
            current = self.record.state if self.record is not None else state
            state = self._advance(current, next_state(current, outcome))

    def _resume(self) -> State:
        record = self.record
        if record is None:
            return State.IDLE
        target = RESUME.get(record.state, State.IDLE)
        log.warning(
            "resuming deployment",
            extra={"deployment": record.deployment.id, "state": str(record.state), "to": target},
        )
        if record.state == State.DOWNLOAD:
            self._undo_interrupted_download()
            self.record = replace(record, restarts=record.restarts + 1)
        elif record.state == State.ARTIFACT_INSTALL and not record.reason:
            self.record = replace(record, reason="the agent restarted during ArtifactInstall")
        return self._advance(record.state, target, report=False)

    def _advance(self, current: State, target: State, report: bool = True) -> State:
        record = self.record
        if record is not None:
            record = replace(record, state=target)
            self.record = record
            save_record(self.data_dir, record)
        if current != target:
            extra = {"state": str(target), "from": str(current)}
            if record is not None:
                extra["deployment"] = record.deployment.id
            log.info("state", extra=extra)
        status = STATUS_ON_ENTER.get(target)
        if report and status and record is not None and not record.aborted:
            try:
                self._report(status)
            except DeploymentAborted as err:
                log.warning("%s", err, extra={"deployment": record.deployment.id})
                self.record = replace(record, aborted=True, reason=str(err))
                return self._advance(target, next_state(target, Outcome.ABORTED), report=False)
            except (ServerError, IdentityError) as err:
                # intermediate reports are best effort; the final one is retried
                log.warning("status report failed: %s", err, extra={"status": status})
        return target

    # -- helpers -------------------------------------------------------------
    def _save(self, **changes: object) -> Record:
        assert self.record is not None
        self.record = replace(self.record, **changes)  # type: ignore[arg-type]
        save_record(self.data_dir, self.record)
        return self.record

    def _soft_scripts(self, state: str, action: str) -> None:
        try:
            self.scripts.run(state, action)
        except ScriptError as err:
            log.warning("%s", err, extra={"state": state})

    def _jitter(self, seconds: float) -> float:
        return seconds * random.uniform(1 - self.s.jitter, 1 + self.s.jitter)

    def _backoff(self) -> float:
        """Exponential from 1 s, capped by RetryPollIntervalSeconds, with jitter."""
        self.failures += 1
        return self._jitter(min(float(self.s.retry_poll), 2.0 ** (self.failures - 1)))

    def _authenticate(self) -> None:
        if self._id_data is None:
            script = (
                Path(self.s.identity_script)
                if self.s.identity_script
                else identity_script(self.s.identity_dirs)
            )
            self._id_data = identity_data(script)
        try:
            self.client.authenticate(self._id_data, self.key, self.s.tenant_token)
        except Unauthorized:
            raise ServerError(
                "authentication: the server does not accept this device (yet): accept it"
                " on the server, or check its identity and key"
            ) from None
        log.info("authenticated")

    def _api(self, call: Callable[..., object], *args: object) -> object:
        """Call the server; authenticate first if needed, and again once on a 401."""
        expires = self.client.token_expires
        if self.client.token is None or (
            expires is not None and expires - TOKEN_MARGIN < time.time()
        ):
            self._authenticate()
        try:
            return call(*args)
        except Unauthorized:
            self._authenticate()
            return call(*args)

    def _report(self, status: str) -> None:
        assert self.record is not None
        self._api(self.client.report_status, self.record.deployment.id, status)

    def _provides(self) -> dict[str, str]:
        provides = current_provides(self.store, self.config)
        device_type = read_device_type(self.config, self.data_dir)
        if device_type is not None:
            provides["device_type"] = device_type
        return provides

    def _device(self):
        from ..device import Device  # imports the installers: only when updating

        return Device(self.config, self.data_dir)

    def _flow(self):
        from ..flow import Flow

        update = self.store.inflight()
        if update is None:
            return None
        device = self._device()
        return Flow(self.store, update, device.installer_for(update), device.scripts())

    def _deployment_log(self):
        from contextlib import nullcontext

        from ..log import deployment_log

        path = self.record.log_path if self.record is not None else None
        return deployment_log(Path(path)) if path else nullcontext()

    def _reboot(self, what: str) -> Outcome:
        """Run RebootCommand; the process is expected to die. Still alive = failure."""
        command = shlex.split(self.s.reboot_command)
        log.info("rebooting", extra={"command": self.s.reboot_command, "for": what})
        for handler in logging.getLogger("pyupdate_agent").handlers:
            handler.flush()
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, check=False)
        except OSError as err:
            self._save(reason=f"RebootCommand {command[0]}: cannot run ({err.strerror})")
            return Outcome.FAIL
        if done.returncode != 0:
            self._save(reason=f"RebootCommand exited with {done.returncode}")
            return Outcome.FAIL
        time.sleep(self.s.reboot_wait)
        self._save(reason=f"the device did not reboot within {self.s.reboot_wait} s")
        return Outcome.FAIL

    def _reboot_for(self, flow, call: str) -> Outcome:
        """A module that answered `Yes` reboots in its own state; else RebootCommand."""
        from ..payloads.module import ModuleInstaller

        installer = flow.installer if flow is not None else None
        if isinstance(installer, ModuleInstaller) and flow.update.needs_reboot == "Yes":
            try:
                getattr(installer, call)()
            except AgentError as err:
                self._save(reason=str(err))
                return Outcome.FAIL
            return Outcome.OK
        return self._reboot(call)

    def _undo_interrupted_download(self) -> None:
        flow = self._flow()
        if flow is not None and flow.update.phase == Phase.DOWNLOAD:
            from ..log import deployment_log

            with deployment_log(Path(flow.update.log_path)):
                flow.fail("the agent restarted during the download", rollback=False)

    # -- Idle and Sync -------------------------------------------------------
    def idle(self) -> Outcome:
        self._soft_scripts("Idle", "Enter")
        while True:
            due = max(min(self.next_update, self.next_inventory), self.retry_at)
            wait = due - time.monotonic()
            if wait <= 0:
                break
            got = signal.sigtimedwait(list(WAKE), wait)
            if got is not None:
                log.info("woken up", extra={"for": WAKE[signal.Signals(got.si_signo)]})
                if got.si_signo == signal.SIGUSR1:
                    self.next_update = 0.0
                else:
                    self.next_inventory = 0.0
                self.retry_at = 0.0
        self._soft_scripts("Idle", "Leave")
        return Outcome.OK

    def sync(self) -> Outcome:
        try:
            self.scripts.run("Sync", "Enter")
            if self.record is not None and self.record.final is not None:
                self._flush_final()
            now = time.monotonic()
            if self.next_inventory <= now:
                self._send_inventory()
                self.next_inventory = now + self._jitter(self.s.inventory_poll)
            found = None
            if self.next_update <= now:
                found = self._check_update()
                self.next_update = now + self._jitter(self.s.update_poll)
            self.scripts.run("Sync", "Leave")
        except (ServerError, IdentityError, AgentError) as err:
            delay = self._backoff()
            self.retry_at = time.monotonic() + delay
            log.warning("%s", err, extra={"retry_in": round(delay, 1)})
            return Outcome.FAIL
        self.failures = 0
        self.retry_at = 0.0
        if found is None:
            return Outcome.NOTHING
        self.record = Record(State.SYNC, found)
        return Outcome.OK

    def _send_inventory(self) -> None:
        provides = self._provides()
        fixed = {
            "device_type": provides.get("device_type", ""),
            "artifact_name": provides["artifact_name"],
            "pyupdate_version": __version__,
        }
        if provides.get("artifact_group"):
            fixed["artifact_group"] = provides["artifact_group"]
        self._api(self.client.put_inventory, inventory(self.s.inventory_dirs, fixed))
        log.info("inventory sent")

    def _check_update(self) -> Deployment | None:
        provides = self._provides()
        found = self._api(self.client.next_deployment, provides)
        if found is None:
            return None
        assert isinstance(found, Deployment)
        if found.artifact_name == provides["artifact_name"]:
            log.info("already installed", extra={"artifact": found.artifact_name})
            self.record = Record(State.SYNC, found)
            try:
                self._report("already-installed")
            finally:
                self.record = None
            return None
        log.info("deployment", extra={"deployment": found.id, "artifact": found.artifact_name})
        return found

    def _flush_final(self) -> None:
        """Report the end of the last update; raises ServerError while unreachable."""
        record = self.record
        assert record is not None and record.final is not None
        if not record.aborted:
            try:
                if record.final == "failure":
                    self._report("failure")
                    self._api(self.client.upload_log, record.deployment.id, self._log_messages())
                elif not record.success_reported:
                    self._report(record.final)
            except DeploymentAborted as err:
                log.warning("%s", err)
        log.info(
            "deployment finished",
            extra={"deployment": record.deployment.id, "status": record.final},
        )
        self.record = None
        clear_record(self.data_dir)

    def _log_messages(self) -> list[dict[str, str]]:
        import json

        assert self.record is not None
        messages: list[dict[str, str]] = []
        path = self.record.log_path
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    messages.append(
                        {
                            "level": str(entry.get("level", "info")),
                            "message": str(entry.get("message", "")),
                            "timestamp": str(entry.get("time", "")),
                        }
                    )
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        messages.append({"level": "error", "message": self.record.reason, "timestamp": now})
        return messages[-1000:]

    # -- the update ----------------------------------------------------------
    def download(self) -> Outcome:
        from pyupdate_artifact.errors import ArtifactError

        from ..install import Hooks, install

        record = self.record
        assert record is not None
        deployment = record.deployment

        def check_header(header) -> None:
            if header.artifact_name != deployment.artifact_name:
                raise ServerError(
                    f"artifact is named {header.artifact_name}, the server announced"
                    f" {deployment.artifact_name}"
                )
            missing = set(deployment.device_types) - set(header.device_types)
            if missing:
                raise ServerError(
                    f"artifact {header.artifact_name} is not for device type"
                    f" {', '.join(sorted(missing))}"
                )

        def on_state(name: str) -> None:
            if name == "Download":
                update = self.store.inflight()
                self._save(log_path=update.log_path if update else None)
                if record.restarts:
                    log.warning(
                        "the agent restarted during the download: the download starts over",
                        extra={"deployment": deployment.id, "restarts": record.restarts},
                    )
            elif name == "ArtifactInstall":
                self._advance(State.DOWNLOAD, State.ARTIFACT_INSTALL, report=False)
                try:
                    self._report("installing")
                except (ServerError, IdentityError) as err:
                    if isinstance(err, DeploymentAborted):
                        raise
                    log.warning("status report failed: %s", err, extra={"status": "installing"})

        stream = None
        try:
            stream = self.client.open_download(
                deployment.uri,
                max_resumes=self.s.download_resumes,
                max_seconds=self.s.download_seconds,
            )
            result = install(
                self._device(),
                self.store,
                stream,
                Hooks(check_header=check_header, on_state=on_state, auto_commit=False),
            )
        except DeploymentAborted as err:
            self._save(aborted=True, reason=str(err))
            return Outcome.ABORTED
        except (AgentError, ArtifactError) as err:
            log.error("deployment failed: %s", err, extra={"deployment": deployment.id})
            self._save(reason=str(err))
            return Outcome.FAIL
        finally:
            if stream is not None:
                stream.close()
        return Outcome.OK if result.needs_reboot != "No" else Outcome.NO_REBOOT

    def artifact_install(self) -> Outcome:
        # reached only when resuming: the install runs inside download()
        self._save(reason=self.record.reason or "interrupted during ArtifactInstall")  # type: ignore[union-attr]
        return Outcome.FAIL

    def artifact_reboot(self) -> Outcome:
        flow = self._flow()
        if flow is None:
            self._save(reason="no update in flight to reboot into")
            return Outcome.FAIL
        with self._deployment_log():
            try:
                self.scripts.run("ArtifactReboot", "Enter")
            except ScriptError as err:
                self.scripts.run("ArtifactReboot", "Error", ignore_errors=True)
                self._save(reason=str(err))
                return Outcome.FAIL
            self._save(rebooted=True)
            return self._reboot_for(flow, "reboot")

    def artifact_verify_reboot(self) -> Outcome:
        from ..payloads.rootfs import RootfsInstaller

        flow = self._flow()
        if flow is None:
            self._save(reason="no update in flight after the reboot")
            return Outcome.FAIL
        with self._deployment_log():
            installer = flow.installer
            try:
                if isinstance(installer, RootfsInstaller):
                    if installer.rolled_back_by_bootloader():
                        raise AgentError(
                            f"the bootloader rolled back to slot {installer.old.label}:"
                            f" {flow.update.artifact_name} did not boot"
                        )
                    installer.commit_precondition()
                else:
                    installer.verify_reboot()  # type: ignore[attr-defined]
                self.scripts.run("ArtifactReboot", "Leave")
            except AgentError as err:
                self.scripts.run("ArtifactReboot", "Error", ignore_errors=True)
                log.error("verification after the reboot failed: %s", err)
                self._save(reason=str(err))
                return Outcome.FAIL
        return Outcome.OK

    def artifact_commit(self) -> Outcome:
        from ..flow import INCONSISTENT

        flow = self._flow()
        if flow is None:
            self._save(reason="no update in flight to commit")
            return Outcome.FAIL
        record = self.record
        assert record is not None
        with self._deployment_log():
            if not record.success_reported:
                outcome = self._report_success()
                if outcome is not None:
                    return outcome
            # point of no return: the server was told `success`
            flow.enter(Phase.COMMIT)
            try:
                flow.installer.commit()
            except AgentError as err:
                self.scripts.run("ArtifactCommit", "Error", ignore_errors=True)
                self._save(reason=str(err), success_reported=False)
                return Outcome.FAIL
            provides = dict(flow.update.new_provides)
            try:
                self.scripts.run("ArtifactCommit", "Leave")
                leave_error = ""
            except ScriptError as err:
                leave_error = str(err)
                provides["artifact_name"] += INCONSISTENT  # too late to go back (mender)
            try:
                flow.installer.cleanup()
            except AgentError as err:
                log.warning("Cleanup failed: %s", err)
            self.store.finish(flow.update, "success", leave_error, provides)
            log.info("committed", extra={"artifact": flow.update.artifact_name})
        self._save(final="success")
        self.next_inventory = 0.0  # the artifact name changed: tell the server now
        return Outcome.OK

    def _report_success(self) -> Outcome | None:
        """ArtifactCommit_Enter, then `success` to the server before the deadline."""
        record = self.record
        assert record is not None
        if record.commit_deadline is None:
            record = self._save(commit_deadline=time.time() + self.s.commit_deadline)
        try:
            self.scripts.run("ArtifactCommit", "Enter")
        except ScriptError as err:
            self.scripts.run("ArtifactCommit", "Error", ignore_errors=True)
            self._save(reason=str(err))
            return Outcome.FAIL
        failures = 0
        while True:
            try:
                # a fresh token, as mender does before a commit: proves auth still works
                self.client.token = None
                self._report("success")
                break
            except DeploymentAborted as err:
                self._save(aborted=True, reason=str(err))
                return Outcome.ABORTED
            except (ServerError, IdentityError) as err:
                assert record.commit_deadline is not None
                left = record.commit_deadline - time.time()
                if left <= 0:
                    reason = (
                        f"the server stayed unreachable for {self.s.commit_deadline} s after"
                        f" the reboot ({err}): rolling back"
                    )
                    log.error("%s", reason)
                    self._save(reason=reason)
                    return Outcome.FAIL
                failures += 1
                delay = min(self._jitter(min(self.s.retry_poll, 2.0 ** (failures - 1))), left)
                log.warning("cannot report success yet: %s", err, extra={"retry_in": delay})
                time.sleep(max(delay, 0.1))
        self._save(success_reported=True)
        return None

    def artifact_rollback(self) -> Outcome:
        from ..payloads.rootfs import RootfsInstaller
        from ..slots import running_slot

        flow = self._flow()
        if flow is None or flow.update.phase == Phase.DOWNLOAD or not flow.update.supports_rollback:
            return Outcome.NO_ROLLBACK
        with self._deployment_log():
            installer = flow.installer
            if isinstance(installer, RootfsInstaller):
                try:
                    runs_new = running_slot(installer.slots, installer.env.read()) == installer.new
                except AgentError:
                    runs_new = True  # unsure: reboot, the env decides
            else:
                runs_new = bool(self.record and self.record.rebooted) and (
                    flow.update.needs_reboot in ("Yes", "Automatic")
                )
            if flow.update.phase != Phase.FAILURE:
                flow.enter(Phase.FAILURE)
            flow.rollback_states()
        return Outcome.OK if runs_new else Outcome.NO_REBOOT

    def artifact_rollback_reboot(self) -> Outcome:
        self._soft_scripts("ArtifactRollbackReboot", "Enter")
        outcome = self._reboot_for(self._flow(), "rollback_reboot")
        # the old system runs whatever happened: the failure path goes on
        return Outcome.OK if outcome == Outcome.FAIL else outcome

    def artifact_verify_rollback_reboot(self) -> Outcome:
        with self._deployment_log():
            flow = self._flow()
            if flow is not None and flow.update.payload_type != "rootfs-image":
                try:
                    flow.installer.verify_rollback_reboot()
                except AgentError as err:
                    log.warning("ArtifactVerifyRollbackReboot failed: %s", err)
            self._soft_scripts("ArtifactRollbackReboot", "Leave")
        return Outcome.OK

    def artifact_failure(self) -> Outcome:
        record = self.record
        assert record is not None
        reason = record.reason or "the update failed"
        flow = self._flow()
        if flow is not None:
            with self._deployment_log():
                flow.fail(reason, rollback=False)
        self._save(final="failure", reason=reason)
        return Outcome.OK

    def cleanup(self) -> Outcome:
        try:
            self._flush_final()
        except (ServerError, IdentityError) as err:
            # kept in the record: the next Sync reports it before asking for more
            log.warning("cannot report the result yet: %s", err)
        self._maybe_reexec()
        return Outcome.OK

    def _maybe_reexec(self) -> None:
        """Start afresh after an update: the installer's imports leave the RSS high."""
        if self.reexec and "pyupdate_artifact" in sys.modules:
            log.info("restarting to release the installer's memory")
            for handler in logging.getLogger("pyupdate_agent").handlers:
                handler.flush()
            self.store.close()
            os.execv(sys.executable, [sys.executable, *self.reexec])


HANDLERS: dict[State, Callable[[Daemon], Outcome]] = {
    State.IDLE: Daemon.idle,
    State.SYNC: Daemon.sync,
    State.DOWNLOAD: Daemon.download,
    State.ARTIFACT_INSTALL: Daemon.artifact_install,
    State.ARTIFACT_REBOOT: Daemon.artifact_reboot,
    State.ARTIFACT_VERIFY_REBOOT: Daemon.artifact_verify_reboot,
    State.ARTIFACT_COMMIT: Daemon.artifact_commit,
    State.ARTIFACT_ROLLBACK: Daemon.artifact_rollback,
    State.ARTIFACT_ROLLBACK_REBOOT: Daemon.artifact_rollback_reboot,
    State.ARTIFACT_VERIFY_ROLLBACK_REBOOT: Daemon.artifact_verify_rollback_reboot,
    State.ARTIFACT_FAILURE: Daemon.artifact_failure,
    State.CLEANUP: Daemon.cleanup,
}
