"""Debian's mender 3.4 daemon against a real `pyupdate-server serve` on 127.0.0.1.

The daemon runs in a private mount namespace: temp dirs are bind-mounted over
/etc/mender, the update modules, identity and inventory dirs, so nothing on the
host changes. It authenticates, is accepted, reports inventory, installs a
single-file module artifact and reports success; then a module that fails in
ArtifactInstall ends `failure` with the device's log stored on the server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from pyupdate_testing.server import Server

pytestmark = [pytest.mark.peers, pytest.mark.root, pytest.mark.slow]

DEVICE_TYPE = "pyupdate-peer"
MODULES = Path("/usr/share/mender/modules/v3")
T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], timeout: float, log: Path) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    tail = log.read_text()[-4000:] if log.exists() else ""
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}\n--- daemon log ---\n{tail}"
    )


def _script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def mender_daemon(live_server: Server, tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "device"
    etc, modules, identity, inventory, data = (
        root / n for n in ("etc", "modules", "identity", "inventory", "data")
    )
    for d in (etc, modules, identity, inventory, data, root / "dest"):
        d.mkdir(parents=True)
    shutil.copy2(MODULES / "single-file", modules / "single-file")
    _script(
        modules / "fail-module",
        # supports rollback, so the device keeps its previous artifact name
        '#!/bin/sh\ncase "$1" in\n  SupportsRollback) echo Yes;;\n'
        '  ArtifactInstall) echo "fail-module: refusing to install" >&2; exit 1;;\n'
        "esac\nexit 0\n",
    )
    _script(identity / "mender-device-identity", "#!/bin/sh\necho mac=02:00:00:00:00:42\n")
    _script(inventory / "mender-inventory-peer", "#!/bin/sh\necho hostname=peer-test\n")
    (etc / "artifact_info").write_text("artifact_name=base-0\n")
    (data / "device_type").write_text(f"device_type={DEVICE_TYPE}\n")
    config = {
        "ServerURL": live_server.url,
        "UpdatePollIntervalSeconds": 2,
        "InventoryPollIntervalSeconds": 5,
        "RetryPollIntervalSeconds": 1,
        "DeviceTypeFile": str(data / "device_type"),
        "ModuleTimeoutSeconds": 60,
        "DBus": {"Enabled": False},
    }
    (etc / "mender.conf").write_text(json.dumps(config))
    mounts = [
        (etc, "/etc/mender"),
        (modules, str(MODULES)),
        (identity, "/usr/share/mender/identity"),
        (inventory, "/usr/share/mender/inventory"),
    ]
    script = " && ".join(f"mount --bind '{src}' '{dst}'" for src, dst in mounts)
    script += (
        f" && exec mender --config /etc/mender/mender.conf --data '{data}'"
        " --no-syslog --log-level debug daemon"
    )
    log = root / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _single_file_artifact(tmp: Path, name: str, dest: Path) -> Path:
    """As Debian's single-file-artifact-gen does it: dest_dir, filename, permissions, file."""
    src = tmp / f"{name}-files"
    src.mkdir()
    (src / "dest_dir").write_text(str(dest))
    (src / "filename").write_text("hello.txt")
    (src / "permissions").write_text("0644")
    (src / "hello.txt").write_text(f"installed by {name}\n")
    out = tmp / f"{name}.mender"
    files = [
        a
        for f in ("dest_dir", "filename", "permissions", "hello.txt")
        for a in ("-f", str(src / f))
    ]
    subprocess.run(
        [
            "mender-artifact",
            "write",
            "module-image",
            "-T",
            "single-file",
            "-t",
            DEVICE_TYPE,
            "-n",
            name,
            *files,
            "-o",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


def _failing_artifact(tmp: Path, name: str) -> Path:
    payload = tmp / "fail.bin"
    payload.write_bytes(b"x" * 8192)
    out = tmp / f"{name}.mender"
    subprocess.run(
        [
            "mender-artifact",
            "write",
            "module-image",
            "-T",
            "fail-module",
            "-t",
            DEVICE_TYPE,
            "-n",
            name,
            "-f",
            str(payload),
            "-o",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


def test_mender_daemon_installs_then_reports_failure(
    live_server: Server,
    mender_daemon: Path,
    tmp_path: Path,
) -> None:
    log = mender_daemon / "daemon.log"
    api = httpx.Client(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {live_server.token}"},
        timeout=30,
    )
    mgmt = "/api/management"

    def pending() -> dict | None:
        devices = api.get(f"{mgmt}/v2/devauth/devices", params={"status": "pending"}).json()
        return devices[0] if devices else None

    device = wait_for("the daemon's first auth request", pending, 60, log)
    assert device["identity_data"] == {"mac": "02:00:00:00:00:42"}
    device_id, auth_id = device["id"], device["auth_sets"][0]["id"]
    r = api.put(
        f"{mgmt}/v2/devauth/devices/{device_id}/auth/{auth_id}/status", json={"status": "accepted"}
    )
    assert r.status_code == 204

    def inventory() -> dict:
        data = api.get(f"{mgmt}/v1/inventory/devices/{device_id}").json()
        return {a["name"]: a["value"] for a in data["attributes"] if a["scope"] == "inventory"}

    inv = wait_for("inventory", lambda: inventory().get("artifact_name") and inventory(), 60, log)
    assert inv["device_type"] == DEVICE_TYPE
    assert inv["artifact_name"] == "base-0"
    assert inv["hostname"] == "peer-test"

    # 1: a single-file module artifact, installed by Debian's own module
    dest = mender_daemon / "dest"
    good = _single_file_artifact(tmp_path, "peer-release-1", dest)
    with open(good, "rb") as fh:
        r = api.post(f"{mgmt}/v1/deployments/artifacts", files={"artifact": ("a.mender", fh)})
    assert r.status_code == 201, r.text
    r = api.post(
        f"{mgmt}/v1/deployments/deployments",
        json={"name": "good", "artifact_name": "peer-release-1", "devices": [device_id]},
    )
    assert r.status_code == 201, r.text
    dep1 = r.headers["location"].rsplit("/", 1)[1]

    def finished(dep: str) -> dict | None:
        shown = api.get(f"{mgmt}/v1/deployments/deployments/{dep}").json()
        return shown if shown["status"] == "finished" else None

    shown = wait_for("deployment 1 to finish", lambda: finished(dep1), 120, log)
    assert shown["statistics"]["success"] == 1, shown
    devices = api.get(f"{mgmt}/v1/deployments/deployments/{dep1}/devices").json()
    assert [(d["id"], d["status"]) for d in devices] == [(device_id, "success")]
    assert (dest / "hello.txt").read_text() == "installed by peer-release-1\n"
    wait_for(
        "inventory to show peer-release-1",
        lambda: inventory().get("artifact_name") == "peer-release-1",
        60,
        log,
    )

    # 2: a module that fails in ArtifactInstall: failure, and the device's log is kept
    bad = _failing_artifact(tmp_path, "peer-release-2")
    with open(bad, "rb") as fh:
        r = api.post(f"{mgmt}/v1/deployments/artifacts", files={"artifact": ("b.mender", fh)})
    assert r.status_code == 201, r.text
    r = api.post(
        f"{mgmt}/v1/deployments/deployments",
        json={"name": "bad", "artifact_name": "peer-release-2", "devices": [device_id]},
    )
    dep2 = r.headers["location"].rsplit("/", 1)[1]
    shown = wait_for("deployment 2 to finish", lambda: finished(dep2), 120, log)
    assert shown["statistics"]["failure"] == 1, shown
    device_log = wait_for(
        "the device's deployment log",
        lambda: (
            r.text
            if (
                r := api.get(f"{mgmt}/v1/deployments/deployments/{dep2}/devices/{device_id}/log")
            ).status_code
            == 200
            else None
        ),
        60,
        log,
    )
    assert "fail-module: refusing to install" in device_log, device_log
    wait_for(
        "inventory after the rollback",
        lambda: inventory().get("artifact_name") == "peer-release-1",
        30,
        log,
    )
