"""Three-phase rollouts with real clients in the fleet (issue 18, "Tests that must exist").

A real `pyupdate-server serve` (pyupdate_testing/server.py) and, in one deployment,
300 simulated devices with their own keys speaking the device API as the Mender 3.4
client does (test_phases_fleet.py runs the same rules in-process on both engines),
Debian's mender 3.4 daemon (pyupdate_testing/mender_client.py) and a `pyupdate daemon`
on a host-mode device (pyupdate_testing/daemon_device.py). The real clients sit at
fixed places in the `devices` list, so their phase is known (docs/deployments.md §8.1).

* healthy: the mender client in phase 1 and the pyupdate daemon in phase 2 each hold
  their phase one success short of the success threshold; the next phase starts only
  when they report success, which they do after their commit (the mender client held at
  `ArtifactCommit_Enter`, the daemon after its reboot into slot B).
* failing: the mender client's failure in phase 2 is the one that reaches the failure
  threshold: the rollout pauses by itself; the pyupdate daemon in phase 3 polls all
  along and is never handed it, through a resume, a second pause and the abort.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from server_helpers import FakeDevice

from pyupdate_testing import mender_client
from pyupdate_testing.daemon_device import CHECK_ROUTE, DaemonDevice, make_daemon_device
from pyupdate_testing.device_keys import device_key, pubkey_pem
from pyupdate_testing.host_device import DEVICE_TYPE, PART_B, needs_tools
from pyupdate_testing.server import Server, live_server, metric
from pyupdate_testing.wait import wait_for

pytestmark = [pytest.mark.peers, pytest.mark.root, pytest.mark.uboot, pytest.mark.slow, needs_tools]

SIMULATED = 300
DEV = "/api/devices/v1/deployments/device/deployments"
MGMT = "/api/management/v1/deployments/deployments"
PROVIDES = {"artifact_name": "base", "device_type": "qemux86-64"}
THREE_PHASES = {
    "phases": [
        {"batch_size": 10},
        {"batch_size": 30, "start_when_healthy": True},
        {"start_when_healthy": True},
    ],
    "failure_threshold": {"percent": 20},
    "success_threshold": {"percent": 75},
}
# 302 devices: phase 1 takes 30 (10%, rounded down), phase 2 90 (30%), phase 3 the 182 left;
# healthy at 23, 68 and 137 successes (75%); paused at 18 failures in phase 2 (20% of 90)


@dataclass
class Fleet:
    server: Server
    sims: list[FakeDevice]
    sim_ids: list[str]
    mender: Path  # the mender client's root (daemon.log, dest/)
    mender_id: str
    daemon: DaemonDevice
    work: Path

    @property
    def logs(self) -> list[Path]:
        return [self.mender / "daemon.log", self.daemon.log, self.server.log]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    work = tmp_path_factory.mktemp("phased-fleet")
    with (
        live_server(work / "server") as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
        mender_client.mender_daemon(work / "mender", server.url) as mender,
    ):
        daemon = make_daemon_device(work / "pyupdate", server, number=7)
        assert daemon.device_id is not None  # preauthorized
        daemon.start()
        try:
            pending = wait_for("the mender client's auth request", server.pending_devices,
                               60, [mender / "daemon.log"])  # fmt: skip
            mender_id, auth = pending[0]["id"], pending[0]["auth_sets"][0]["id"]
            r = server.api.put(
                f"/api/management/v2/devauth/devices/{mender_id}/auth/{auth}/status",
                json={"status": "accepted"},
            )
            assert r.status_code == 204, r.text
            # the simulated devices meanwhile (the mender client retries its auth on its own)
            sims = [
                FakeDevice(http, {"mac": f"fleet-{i}"}, device_key("ec", i))  # type: ignore[arg-type]
                for i in range(SIMULATED)
            ]
            ids = list(POOL.map(lambda sim: _admit(server, sim), sims))
            yield Fleet(server, sims, ids, mender, mender_id, daemon, work)
        finally:
            daemon.stop()


# -- the simulated devices, driven by the test ---------------------------------------------

# A few devices at once, as a fleet talks: the test's side (signing, HTTP) overlaps the
# server's; results come back in the devices' order.
POOL = ThreadPoolExecutor(4, thread_name_prefix="fleet")


def _admit(server: Server, sim: FakeDevice) -> str:
    device_id = server.preauthorize(sim.identity, pubkey_pem(sim.key))
    assert sim.authenticate().status_code == 200
    return device_id


def _poll(sim: FakeDevice) -> str | None:
    r = sim.client.post(f"{DEV}/next", json=PROVIDES, headers=sim.headers)
    assert r.status_code in (200, 204), r.text
    return r.json()["id"] if r.status_code == 200 else None


def _handed(sims: list[FakeDevice], dep: str, among: range) -> list[int]:
    """Poll with the devices numbered `among`; the numbers of those handed `dep`."""
    got = POOL.map(lambda i: _poll(sims[i]), among)
    return [i for i, handed in zip(among, got, strict=True) if handed == dep]


def _install(sim: FakeDevice, dep: str, result: str = "success") -> int:
    """Status reports to the final one (success only after the reboot, as the real clients
    send it); the status code of the first report refused."""
    for status in ("downloading", "installing", "rebooting", result):
        r = sim.client.put(f"{DEV}/{dep}/status", json={"status": status}, headers=sim.headers)
        if r.status_code != 204:
            return r.status_code
    return 204


def _install_all(fleet: Fleet, dep: str, among: range, result: str = "success") -> None:
    codes = POOL.map(lambda i: _install(fleet.sims[i], dep, result), among)
    assert set(codes) <= {204}


# -- the management side ---------------------------------------------------------------------


def _release(fleet: Fleet, name: str, mender_artifact: Path) -> None:
    """`name` for every device type in the fleet: a rootfs image for the simulated devices
    and the pyupdate daemon's slot B, and `mender_artifact` for the mender client."""
    image = fleet.work / f"{name}.img"
    image.write_bytes(name.encode().ljust(64, b".") * (1 << 14))  # 1 MiB
    rootfs = fleet.work / f"{name}-rootfs.mender"
    subprocess.run(
        ["mender-artifact", "write", "rootfs-image", "-f", str(image), "-n", name,
         "-t", PROVIDES["device_type"], "-t", DEVICE_TYPE, "-o", str(rootfs), "--no-progress"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    fleet.server.upload(rootfs)
    fleet.server.upload(mender_artifact)


def _deploy(fleet: Fleet, name: str, devices: list[str]) -> str:
    return fleet.server.deploy(name, devices, **THREE_PHASES)


def _phases(fleet: Fleet, dep: str) -> list[tuple[str, int, int, int]]:
    """(status, handed, successes, failures) per phase."""
    shown = fleet.server.deployment(dep)
    return [
        (p["status"], p["device_count"], p["successes"], p["failures"]) for p in shown["phases"]
    ]


def _status(fleet: Fleet, dep: str, device: str) -> str:
    return fleet.server.device_statuses(dep)[device]


def _set(fleet: Fleet, dep: str, status: str) -> int:
    r = fleet.server.api.put(f"{MGMT}/{dep}/status", json={"status": status})
    return r.status_code


def _end(fleet: Fleet, dep: str) -> None:
    """A failed test leaves no open deployment to hold the next test's devices."""
    if fleet.server.deployment(dep)["status"] != "finished":
        _set(fleet, dep, "aborted")


def _gate(fleet: Fleet, name: str, state: str) -> tuple[Path, Path]:
    """A state script for the mender client that waits in `state` until the test opens
    the gate: (script, gate)."""
    gate = fleet.work / f"gate-{name}"
    script = mender_client.gate_script(fleet.work / f"{state}_00_gate", gate)
    return script, gate


# -- the tests ---------------------------------------------------------------------------------


def test_healthy_rollout_advances_as_the_real_clients_commit(fleet: Fleet) -> None:
    name = "fleet-2"
    script, gate = _gate(fleet, name, "ArtifactCommit_Enter")
    dest = fleet.mender / "dest"
    _release(fleet, name, mender_client.single_file_artifact(fleet.work, name, dest, (script,)))
    ids, daemon = fleet.sim_ids, fleet.daemon
    order = [fleet.mender_id, *ids[:29], daemon.device_id, *ids[29:118], *ids[118:]]
    dep = _deploy(fleet, name, order)  # type: ignore[list-item]
    try:
        assert _handed(fleet.sims, dep, range(SIMULATED)) == list(range(29))

        # phase 1: the mender client installs and is held before its commit
        wait_for("the mender client at its commit", gate.with_suffix(".reached").exists,
                 120, fleet.logs)  # fmt: skip
        _install_all(fleet, dep, range(22))
        time.sleep(3)  # the pyupdate daemon polls every second meanwhile
        assert _phases(fleet, dep) == [
            ("inprogress", 30, 22, 0), ("waiting", 0, 0, 0), ("waiting", 0, 0, 0)
        ]  # fmt: skip
        # its last report: Mender 3.4 sends `rebooting` on its way to the commit even when
        # the module needs no reboot; not a success yet
        assert _status(fleet, dep, fleet.mender_id) == "rebooting"
        assert _status(fleet, dep, daemon.device_id) == "pending"  # type: ignore[arg-type]
        gate.with_suffix(".open").touch()  # the commit goes through: success, the 23rd
        wait_for("phase 2", lambda: _phases(fleet, dep)[1][0] == "inprogress", 60, fleet.logs)
        assert _status(fleet, dep, fleet.mender_id) == "success"
        assert (dest / "hello.txt").read_text() == f"installed by {name}\n"
        _install_all(fleet, dep, range(22, 29))

        # phase 2: the pyupdate daemon installs, reboots, and commits only after the reboot
        assert _handed(fleet.sims, dep, range(29, SIMULATED)) == list(range(29, 118))
        daemon.wait_stopped(120)  # its reboot (the reboot script kills it)
        _install_all(fleet, dep, range(29, 96))
        assert _phases(fleet, dep)[1:] == [("inprogress", 90, 67, 0), ("waiting", 0, 0, 0)]
        assert _status(fleet, dep, daemon.device_id) == "rebooting"  # type: ignore[arg-type]
        assert daemon.host.boot() == PART_B
        daemon.start()  # on B: commit, then success, the 68th
        wait_for("phase 3", lambda: _phases(fleet, dep)[2][0] == "inprogress", 60, fleet.logs)
        assert _status(fleet, dep, daemon.device_id) == "success"  # type: ignore[arg-type]
        assert daemon.show_artifact() == name
        _install_all(fleet, dep, range(96, 118))

        # phase 3: the rest
        assert _handed(fleet.sims, dep, range(118, SIMULATED)) == list(range(118, SIMULATED))
        _install_all(fleet, dep, range(118, SIMULATED))
        shown = fleet.server.deployment(dep)
    finally:
        _end(fleet, dep)
    assert shown["status"] == "finished"
    assert shown["statistics"]["success"] == SIMULATED + 2
    assert [e["message"] for e in shown["events"]] == [
        "phase 1: started (at once): 30 devices",
        "phase 1: 23 successes of 30 (77%) >= threshold 75%: healthy",
        "phase 2: started (phase 1 is healthy): 90 devices",
        "phase 2: 68 successes of 90 (76%) >= threshold 75%: healthy",
        "phase 3: started (phase 2 is healthy): 182 devices",
        "phase 3: 137 successes of 182 (75%) >= threshold 75%: healthy",
    ]


def test_failing_rollout_pauses_itself_and_phase_three_is_never_handed_it(fleet: Fleet) -> None:
    name = "fleet-3"
    script, gate = _gate(fleet, name, "ArtifactInstall_Enter")
    _release(fleet, name, mender_client.failing_artifact(fleet.work, name, (script,)))
    ids, daemon = fleet.sim_ids, fleet.daemon
    order = [*ids[:30], fleet.mender_id, *ids[30:119], *ids[119:], daemon.device_id]
    dep = _deploy(fleet, name, order)  # type: ignore[list-item]
    polls = metric(fleet.server, "pyupdate_http_requests", route=CHECK_ROUTE, status="204")
    try:
        assert _handed(fleet.sims, dep, range(SIMULATED)) == list(range(30))
        _install_all(fleet, dep, range(30))

        # phase 2: 40 of its devices ask first; 17 fail, then the mender client's is the 18th
        assert _handed(fleet.sims, dep, range(30, 70)) == list(range(30, 70))
        wait_for("the mender client at its install", gate.with_suffix(".reached").exists,
                 120, fleet.logs)  # fmt: skip
        _install_all(fleet, dep, range(30, 47), "failure")
        assert fleet.server.deployment(dep)["paused"] is False  # 17 of 90
        gate.with_suffix(".open").touch()
        wait_for("the pause", lambda: fleet.server.deployment(dep)["paused"], 60, fleet.logs)
        assert _status(fleet, dep, fleet.mender_id) == "failure"
        shown = fleet.server.deployment(dep)
        assert shown["status"] == "paused"
        assert shown["events"][-1]["message"] == (
            "phase 2: 18 failures of 90 (20%) >= threshold 20%: paused"
        )
        log = wait_for("the mender client's log",
                       lambda: fleet.server.device_log(dep, fleet.mender_id), 60, fleet.logs)  # fmt: skip
        assert "fail-module: refusing to install" in log

        # paused: the devices in flight get it again and finish; nobody else is handed it
        assert _handed(fleet.sims, dep, range(SIMULATED)) == list(range(47, 70))
        _install_all(fleet, dep, range(47, 70))
        assert _handed(fleet.sims, dep, range(SIMULATED)) == []
        assert _phases(fleet, dep)[2] == ("waiting", 0, 0, 0)

        # resumed: the rest of phase 2 is handed it; 18 new failures pause it again
        assert _set(fleet, dep, "inprogress") == 204
        assert _handed(fleet.sims, dep, range(SIMULATED)) == list(range(70, 119))
        _install_all(fleet, dep, range(70, 88), "failure")
        shown = fleet.server.deployment(dep)
        assert shown["status"] == "paused"
        assert [(e["kind"], e["message"]) for e in shown["events"][-2:]] == [
            ("resumed", "resumed by admin@example.com"),
            ("paused", "phase 2: 18 failures since the last resume of 90 (20%) >= threshold "
                       "20%: paused"),
        ]  # fmt: skip
        assert _phases(fleet, dep)[2] == ("waiting", 0, 0, 0)

        assert _set(fleet, dep, "aborted") == 204
        assert _install(fleet.sims[100], dep) == 409  # in flight: told at its next report
        assert _handed(fleet.sims, dep, range(SIMULATED)) == []
        # the daemon kept asking all along (and the mender client after its failure)
        wait_for(
            "the real clients' polls",
            lambda: metric(fleet.server, "pyupdate_http_requests", route=CHECK_ROUTE,
                           status="204") >= polls + 10,
            30, fleet.logs,
        )  # fmt: skip
        shown = fleet.server.deployment(dep)
    finally:
        _end(fleet, dep)
    assert shown["aborted"] is True and shown["status"] == "finished"
    assert _phases(fleet, dep)[2][1] == 0  # phase 3: nobody handed it
    assert _status(fleet, dep, daemon.device_id) == "aborted"  # type: ignore[arg-type]
    assert dep not in daemon.log.read_text()  # never handed: it never heard of it
    assert daemon.machine_state() is None
    assert daemon.show_artifact() != name
    stats = shown["statistics"]
    assert (stats["success"], stats["failure"]) == (30 + 23, 17 + 1 + 18)
    assert shown["events"][-1]["message"] == "aborted by admin@example.com"
