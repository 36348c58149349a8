"""The daemon: the table (core/states.py) in managed mode, forever.

It adds what only managed mode has: Idle (wait for a poll or a signal),
Sync (inventory, deployment check, the result still owed), the server's part
of each step (statuses, the download link, RebootCommand) and the commit
rule: commit only after `success` reached the server, roll back when it
cannot be reached before CommitReportDeadlineSeconds (docs/agent.md,
"Managed mode"). The update itself runs through the same steps as
`pyupdate install` (core/steps.py), imported when a deployment arrives.

Idle imports nothing heavy: the artifact library and the installers come
with the first deployment, and the device key lives in a child process
(keytool.py), so the idle daemon stays small (bench/agent.py).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .. import __version__, window
from ..backoff import backoff, jitter
from ..bootstrap import take_bootstrap
from ..config import Config, read_device_type
from ..core.errors import Aborted
from ..core.record import Deployment, Record
from ..core.runner import Context, Machine
from ..core.states import FINAL, Mode, Outcome, State
from ..errors import AgentError
from ..provides import current_provides
from ..scripts import ScriptRunner, ScriptSettings
from ..store import Store
from .client import DeviceClient
from .identity import inventory
from .reporting import Reporter
from .session import Session
from .settings import DaemonSettings

if TYPE_CHECKING:
    from ..core.steps import Steps
    from ..window import Window

log = logging.getLogger(__name__)

WAKE = {signal.SIGUSR1: "update", signal.SIGUSR2: "inventory"}


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
        self.session = Session(self.client, settings)
        self.reporter = Reporter(self.session, settings.retry_poll, settings.jitter)
        store = Store.open(data_dir, create=True)
        assert store is not None
        take_bootstrap(store, data_dir, config)
        self.store = store
        scripts = ScriptRunner(
            [Path(d) for d in config.scripts_dirs],
            data_dir / "scripts",
            ScriptSettings(
                config.state_script_timeout_seconds,
                config.state_script_retry_timeout_seconds,
                config.state_script_retry_interval_seconds,
            ),
        )
        self.ctx = Context(store, scripts, Mode.MANAGED)
        self._steps: Steps | None = None
        self.found: Deployment | None = None
        self.already = False
        self.next_update = 0.0
        self.next_inventory = 0.0
        self.retry_at = 0.0
        self.failures = 0

    def run(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, set(WAKE))
        machine = Machine(self.ctx, self)
        record = self.store.load()
        if record is not None and record.managed:
            machine.resume(record)
        machine.run(State.IDLE)

    # -- Actions (core/runner.py) ---------------------------------------------------
    def do(self, name: str) -> Outcome | None:
        own = getattr(self, f"act_{name}", None)
        if own is not None:
            return own()  # type: ignore[no-any-return]
        return self._update_steps().do(name)

    def _update_steps(self) -> Steps:
        if self._steps is None:
            from ..core.steps import Steps  # the installers: only when updating
            from ..device import Device

            device = Device(self.config, self.data_dir)
            self._steps = Steps(self.ctx, device, managed=self)
        return self._steps

    def when(self, name: str) -> bool:
        if name == "result_owed":
            return self.ctx.record is not None and self.ctx.record.final is not None
        if name == "already_installed":
            return self.already
        raise ValueError(f"no condition {name}")

    def report(self, status: str) -> None:
        record = self.ctx.record
        if status == "already-installed":
            assert self.found is not None
            self.reporter.status(self.found, status)
            return
        assert record is not None and record.deployment is not None
        if status == FINAL:
            self.reporter.result(record)
            if record.final == "success":
                self.next_inventory = 0.0  # the artifact name changed: tell the server now
        elif status == "success":
            if record.success_reported:
                return
            if record.commit_deadline is None:
                record = self.ctx.save(commit_deadline=time.time() + self.s.commit_deadline)
            assert record.commit_deadline is not None
            self.reporter.success(record.deployment, record.commit_deadline, self.s.commit_deadline)
            self.ctx.save(success_reported=True)
        else:
            self.reporter.status(record.deployment, status)

    # -- Managed (core/steps.py) ----------------------------------------------------
    def open_download(self, uri: str) -> BinaryIO:
        return self.client.open_download(  # type: ignore[return-value]
            uri, max_resumes=self.s.download_resumes, max_seconds=self.s.download_seconds
        )

    def reboot(self, what: str) -> None:
        """Run RebootCommand; the process is expected to die. Still alive = AgentError."""
        command = shlex.split(self.s.reboot_command)
        log.info("rebooting", extra={"command": self.s.reboot_command, "for": what})
        for handler in logging.getLogger("pyupdate_agent").handlers:
            handler.flush()
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, check=False)
        except OSError as err:
            raise AgentError(f"RebootCommand {command[0]}: cannot run ({err.strerror})") from None
        if done.returncode != 0:
            raise AgentError(f"RebootCommand exited with {done.returncode}")
        time.sleep(self.s.reboot_wait)
        raise AgentError(f"the device did not reboot within {self.s.reboot_wait} s")

    # -- Download and Downloaded: the install window ----------------------------------
    def _window(self) -> Window | None:
        """The deployment's window, else InstallWindow, else None (install at once)."""
        record = self.ctx.record
        text = record.deployment.install_window if record and record.deployment else None
        text = text or self.config.install_window
        return None if text is None else window.parse(text)

    def act_hold_install(self) -> Outcome | None:
        """Outside the install window the update waits in Downloaded (`pause`)."""
        found = self._window()
        if found is None or found.is_open(window.local_now()):
            return None
        log.info("waiting for the install window", extra={"window": str(found)})
        return Outcome.PAUSE

    def act_await_install(self) -> Outcome:
        """Until the window opens; meanwhile the status again at each update poll (a 409
        is the abort, raised to the table), and the inventory when due."""
        found = self._window()
        while True:
            now = window.local_now()
            if found is None or found.is_open(now):
                log.info("the install window is open", extra={"window": str(found)})
                return Outcome.INSTALL
            mono = time.monotonic()
            if self.next_update <= mono:
                self.next_update = mono + jitter(self.s.update_poll, self.s.jitter)
                try:
                    self.report("pause_before_installing")
                except Aborted:
                    raise
                except AgentError as err:  # unreachable: the wait goes on
                    log.warning("status report failed: %s", err)
            if self.next_inventory <= mono:
                try:
                    self.act_inventory()
                except AgentError as err:
                    self.next_inventory = mono + self.s.retry_poll
                    log.warning("inventory failed: %s", err)
            due = min(self.next_update, self.next_inventory) - mono
            wait = window.tick(max(min(found.seconds_until_open(now), due), 0.01))
            got = signal.sigtimedwait(list(WAKE), wait)
            if got is not None:
                log.info("woken up", extra={"for": WAKE[signal.Signals(got.si_signo)]})
                if got.si_signo == signal.SIGUSR1:
                    self.next_update = 0.0
                else:
                    self.next_inventory = 0.0

    # -- Idle -----------------------------------------------------------------------
    def act_release_memory(self) -> None:
        """Start afresh after an update: the installer's imports leave the RSS high."""
        updated, self._steps = self._steps is not None, None
        if self.reexec and updated:
            log.info("restarting to release the installer's memory")
            for handler in logging.getLogger("pyupdate_agent").handlers:
                handler.flush()
            self.store.close()
            os.execv(sys.executable, [sys.executable, *self.reexec])

    def act_wait(self) -> None:
        while True:
            due = max(min(self.next_update, self.next_inventory), self.retry_at)
            wait = due - time.monotonic()
            if wait <= 0:
                return
            got = signal.sigtimedwait(list(WAKE), wait)
            if got is not None:
                log.info("woken up", extra={"for": WAKE[signal.Signals(got.si_signo)]})
                if got.si_signo == signal.SIGUSR1:
                    self.next_update = 0.0
                else:
                    self.next_inventory = 0.0
                self.retry_at = 0.0

    # -- Sync -----------------------------------------------------------------------
    def _provides(self) -> dict[str, str]:
        provides = current_provides(self.store, self.config)
        device_type = read_device_type(self.config, self.data_dir)
        if device_type is not None:
            provides["device_type"] = device_type
        return provides

    def act_inventory(self) -> None:
        now = time.monotonic()
        if self.next_inventory > now:
            return
        # the delta package is light (its applier: hashlib, lzma, struct), unlike the reader
        from pyupdate_artifact.delta import DELTA_TYPE

        from ..payloads.module import module_names

        provides = self._provides()
        # what mender 3.x sends besides the scripts' attributes: its provides
        # (rootfs-image.checksum tells the server which delta fits) and its update modules
        # (pyupdate-delta tells it this device applies deltas); the fixed ones win
        sent: dict[str, str | list[str]] = dict(provides)
        sent["update_modules"] = sorted({*module_names(self.config.modules_dirs), DELTA_TYPE})
        sent.update(
            device_type=provides.get("device_type", ""),
            artifact_name=provides["artifact_name"],
            pyupdate_version=__version__,
        )
        if not provides.get("artifact_group"):
            sent.pop("artifact_group", None)
        self.session.api(self.client.put_inventory, inventory(self.s.inventory_dirs, sent))
        log.info("inventory sent")
        self.next_inventory = now + jitter(self.s.inventory_poll, self.s.jitter)

    def act_check_update(self) -> None:
        self.found, self.already = None, False
        now = time.monotonic()
        if self.next_update > now:
            return
        provides = self._provides()
        found = self.session.api(self.client.next_deployment, provides)
        self.next_update = now + jitter(self.s.update_poll, self.s.jitter)
        if found is None:
            return
        self.found = found
        if found.artifact_name == provides["artifact_name"]:
            log.info("already installed", extra={"artifact": found.artifact_name})
            self.already = True

    def act_take_deployment(self) -> Outcome | None:
        self.failures = 0
        self.retry_at = 0.0
        found = self.found
        if found is None or self.already:
            return Outcome.NOTHING
        pending = self.store.load()
        if pending is not None:  # a `pyupdate install` waits for its commit or rollback
            name = pending.update.artifact_name if pending.update else "an update"
            log.warning("%s is in flight: commit or roll it back first", name)
            return Outcome.NOTHING
        log.info("deployment", extra={"deployment": found.id, "artifact": found.artifact_name})
        self.ctx.record = Record(State.SYNC, deployment=found)
        self.ctx.error = None
        return None

    def act_back_off(self) -> None:
        self.failures += 1
        delay = jitter(backoff(self.failures, float(self.s.retry_poll)), self.s.jitter)
        self.retry_at = time.monotonic() + delay
        log.warning("%s", self.ctx.last_error, extra={"retry_in": round(delay, 1)})
