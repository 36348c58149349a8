"""20 daemons against one `pyupdate-server serve`, one rootfs deployment, all reach success."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pyupdate_testing.daemon_device import deployment_done, make_daemon_device
from pyupdate_testing.host_device import PART_B, needs_tools
from pyupdate_testing.server import live_server
from pyupdate_testing.wait import wait_for

pytestmark = [pytest.mark.uboot, pytest.mark.peers, pytest.mark.slow, needs_tools]

FLEET = 20


def test_twenty_agents_in_parallel_all_reach_success(tmp_path: Path, rootfs_artifact) -> None:
    art = rootfs_artifact("fleet-1", size=256 << 10)
    with live_server(tmp_path) as srv:
        srv.upload(art)
        devices = [
            make_daemon_device(tmp_path / f"dev{n}", srv, number=n, UpdatePollIntervalSeconds=2)
            for n in range(FLEET)
        ]
        booted: dict[int, int] = {}
        errors: list[BaseException] = []

        def reboot(n: int) -> None:
            try:
                booted[n] = devices[n].reboot_and_restart(timeout=90)
            except BaseException as err:  # reported below
                errors.append(err)

        try:
            for dev in devices:
                dev.start()
            dep = srv.deploy("fleet-1", [d.device_id for d in devices])
            threads = [threading.Thread(target=reboot, args=(n,)) for n in range(FLEET)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors, errors[0]
            shown = wait_for("all devices", lambda: deployment_done(srv, dep), 90,
                             [d.log for d in devices])  # fmt: skip
            # each device commits after the server heard its `success`
            for dev in devices:
                wait_for("the commit", lambda d=dev: d.show_artifact() == "fleet-1", 30, [dev.log])
        finally:
            for dev in devices:
                dev.stop()
    assert shown["statistics"]["success"] == FLEET, shown["statistics"]
    assert set(booted.values()) == {PART_B}
    assert all(d.show_artifact() == "fleet-1" for d in devices)
