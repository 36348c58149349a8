"""Managed mode on the host: devices running `pyupdate daemon` as separate processes.

A "reboot" is the daemon running RebootCommand = a script that records the
reboot and SIGKILLs its parent (the daemon), as a power-off would; the test then
plays the bootloader on the env file (bootloader_sim via HostDevice.boot) and
starts the daemon again. The server is server.live_server's.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pyupdate_testing.host_device import HostDevice, make_host
from pyupdate_testing.server import Server

# A daemon that polls only when told to (check-update, send-inventory, a 401 to recover from),
# and the server routes its metrics count those requests under.
QUIET = dict(UpdatePollIntervalSeconds=3600, InventoryPollIntervalSeconds=3600)
CHECK_ROUTE = "/api/devices/v2/deployments/device/deployments/next"
INVENTORY_ROUTE = "/api/devices/v1/inventory/device/attributes"


REBOOT_SCRIPT = """#!/bin/sh
# RebootCommand for host-mode tests: note the reboot, then power off = SIGKILL the daemon
echo reboot >> "{log}"
kill -9 $PPID
sleep 5
"""


@dataclass
class DaemonDevice:
    """A host-mode device (host_device.HostDevice) plus what managed mode needs."""

    host: HostDevice
    number: int
    server_url: str
    proc: subprocess.Popen[bytes] | None = None
    device_id: str | None = None
    starts: int = 0
    env_extra: dict[str, str] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.host.root

    @property
    def log(self) -> Path:
        return self.root / "daemon.log"

    @property
    def reboots(self) -> list[str]:
        path = self.root / "reboots"
        return path.read_text().split() if path.exists() else []

    @property
    def identity(self) -> dict[str, str]:
        return {"mac": f"02:00:00:00:{self.number // 256:02x}:{self.number % 256:02x}"}

    def start(self, *extra_args: str) -> None:
        self.starts += 1
        with open(self.log, "ab") as out:
            out.write(f"=== start {self.starts} ===\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pyupdate_agent.cli", *self.host.argv(
                    "--log-level", "info", "daemon", *extra_args)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, **self.env_extra},
            )  # fmt: skip

    def wait_stopped(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"daemon {self.number} still runs after {timeout}s\n{self.log.read_text()[-4000:]}"
            ) from None

    def reboot_and_restart(self, timeout: float = 60) -> int:
        """Wait for the daemon to 'power off' (reboot script), boot, start it again."""
        self.wait_stopped(timeout)
        part = self.host.boot()
        self.start()
        return part

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def store_history(self) -> list[tuple[str, str]]:
        import sqlite3

        db = sqlite3.connect(self.host.data / "pyupdate-store.sqlite")
        try:
            return [(str(a), str(b)) for a, b in db.execute(
                "SELECT artifact_name, result FROM history ORDER BY seq")]  # fmt: skip
        finally:
            db.close()

    def show_artifact(self) -> str:
        return self.host.run("show-artifact").stdout.strip()

    def machine_state(self) -> str | None:
        """The state in the store's one record; None when the device holds no deployment."""
        import sqlite3

        path = self.host.data / "pyupdate-store.sqlite"
        if not path.exists():
            return None
        db = sqlite3.connect(path)
        try:
            rows = db.execute("SELECT state FROM machine WHERE id = 1").fetchall()
        except sqlite3.OperationalError:  # no machine table yet
            return None
        finally:
            db.close()
        return str(rows[0][0]) if rows else None


def ed25519_key(path: Path) -> str:
    """Write a device key (PKCS#8 PEM, 0600) and return its public PEM (fast to make)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def make_daemon_device(
    root: Path,
    server: Server,
    number: int = 1,
    server_url: str | None = None,
    preauthorize: bool = True,
    **config: object,
) -> DaemonDevice:
    """A host device configured for `pyupdate daemon` against `server` (or `server_url`)."""
    host = make_host(root)
    dev = DaemonDevice(host, number, server_url or server.url)
    identity = root / "identity"
    identity.write_text("#!/bin/sh\n" + "".join(f"echo {k}={v}\n" for k, v in dev.identity.items()))
    identity.chmod(0o755)
    inventory = root / "inventory"
    inventory.mkdir()
    (inventory / "hostinfo").write_text(f"#!/bin/sh\necho hostname=device-{number}\n")
    (inventory / "hostinfo").chmod(0o755)
    reboot = root / "reboot.sh"
    reboot.write_text(REBOOT_SCRIPT.format(log=root / "reboots"))
    reboot.chmod(0o755)
    key = host.data / "pyupdate-agent.pem"
    pubkey = ed25519_key(key)
    settings: dict[str, object] = dict(
        ServerURL=dev.server_url,
        UpdatePollIntervalSeconds=1,
        InventoryPollIntervalSeconds=30,
        RetryPollIntervalSeconds=1,
        PollJitter=0.1,
        RebootCommand=str(reboot),
        RebootWaitSeconds=30,
        CommitReportDeadlineSeconds=20,
        IdentityScript=str(identity),
        InventoryDirs=[str(inventory)],
        RequestTimeoutSeconds=5,
        DeviceKeyType="ed25519",
        ArtifactInfoFiles=[str(root / "artifact_info")],
    )
    host.write_config(**(settings | config))
    (root / "artifact_info").write_text("artifact_name=release-0\n")
    if preauthorize:
        dev.device_id = server.preauthorize(dev.identity, pubkey)
    return dev


def deployment_done(server: Server, dep: str) -> dict | None:
    shown = server.deployment(dep)
    return shown if shown["status"] == "finished" else None


def log_lines(dev: DaemonDevice) -> list[dict]:
    """The JSON lines of every deployment log on the device."""
    lines = []
    for path in sorted(dev.host.data.glob("deployments.*.log")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines
