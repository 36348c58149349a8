"""Debian's mender 3.4 daemon against a real `pyupdate-server serve` on 127.0.0.1.

The daemon runs in a private mount namespace (pyupdate_testing/mender_client.py), so
nothing on the host changes. It authenticates, is accepted, reports inventory, installs a
single-file module artifact and reports success; then a module that fails in
ArtifactInstall ends `failure` with the device's log stored on the server.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from pyupdate_testing import mender_client
from pyupdate_testing.mender_client import DEVICE_TYPE, failing_artifact, single_file_artifact
from pyupdate_testing.server import Server

pytestmark = [pytest.mark.peers, pytest.mark.root, pytest.mark.slow]

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


@pytest.fixture
def mender_daemon(live_server: Server, tmp_path: Path) -> Iterator[Path]:
    with mender_client.mender_daemon(tmp_path / "device", live_server.url) as root:
        yield root


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
    good = single_file_artifact(tmp_path, "peer-release-1", dest)
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
    bad = failing_artifact(tmp_path, "peer-release-2")
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
