"""`pyupdate daemon` with an install window (InstallWindow), against the real
`pyupdate-server serve`: the artifact is downloaded at once, the device reports
`pause_before_installing` and waits in Downloaded (env untouched) until the window
opens; a power cut while it waits keeps it waiting; an abort while it waits drops the
download. The clock is the test's (window.py's PYUPDATE_TEST_CLOCK seam): no real hours.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyupdate_agent.window import CLOCK
from pyupdate_testing.daemon_device import DaemonDevice, deployment_done, make_daemon_device
from pyupdate_testing.host_device import PART_A, PART_B, needs_tools, sha256
from pyupdate_testing.server import Server, live_server
from pyupdate_testing.wait import wait_for

pytestmark = [pytest.mark.uboot, pytest.mark.peers, needs_tools]

WINDOW = "02:00-04:00"
SIZE = 1 << 20


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with live_server(tmp_path) as srv:
        yield srv


def _device(tmp_path: Path, server: Server) -> tuple[DaemonDevice, Path]:
    dev = make_daemon_device(tmp_path / "dev", server, InstallWindow=WINDOW)
    clock = dev.root / "clock"
    clock.write_text("12:00\n")  # outside the window
    dev.env_extra[CLOCK] = str(clock)
    return dev, clock


def _downloaded(dev: DaemonDevice, server: Server, dep: str) -> bool:
    return (
        dev.machine_state() == "Downloaded"
        and server.device_statuses(dep).get(dev.device_id) == "pause_before_installing"
    )


def _slot_b_holds(dev: DaemonDevice, name: str) -> bool:
    with open(dev.host.slot_b, "rb") as f:
        image = f.read(SIZE)
    return image == hashlib.sha256(name.encode()).digest() * (SIZE // 32)


def test_outside_the_window_the_update_downloads_waits_then_installs_when_it_opens(
    tmp_path: Path, server: Server, rootfs_artifact
) -> None:
    dev, clock = _device(tmp_path, server)
    env_before, slot_a = dev.host.env(), sha256(dev.host.slot_a)
    server.upload(rootfs_artifact("release-w", size=SIZE))
    dev.start()
    try:
        dep = server.deploy("release-w", [dev.device_id])
        wait_for("the wait", lambda: _downloaded(dev, server, dep), 60, [dev.log])
        assert _slot_b_holds(dev, "release-w")  # downloaded at once...
        assert dev.host.env() == env_before  # ...but not installed
        assert dev.reboots == []
        assert dev.proc is not None and dev.proc.poll() is None  # still waiting

        clock.write_text("02:00\n")  # the window opens
        assert dev.reboot_and_restart() == PART_B
        shown = wait_for("success", lambda: deployment_done(server, dep), 60, [dev.log])
        wait_for("the commit", lambda: dev.show_artifact() == "release-w", 30, [dev.log])
    finally:
        dev.stop()
    assert shown["statistics"]["success"] == 1
    assert dev.reboots == ["reboot"]
    assert sha256(dev.host.slot_a) == slot_a
    env = dev.host.env()
    assert (env["mender_boot_part"], env["upgrade_available"]) == (str(PART_B), "0")


def test_a_power_cut_while_waiting_keeps_the_update_waiting(
    tmp_path: Path, server: Server, rootfs_artifact
) -> None:
    dev, clock = _device(tmp_path, server)
    env_before = dev.host.env()
    server.upload(rootfs_artifact("release-p", size=SIZE))
    dev.start()
    try:
        dep = server.deploy("release-p", [dev.device_id])
        wait_for("the wait", lambda: _downloaded(dev, server, dep), 60, [dev.log])
        dev.stop()  # SIGKILL: the power goes
        assert dev.host.boot() == PART_A  # the bootloader still boots the old slot
        dev.start()
        wait_for("resumed", lambda: "resuming" in dev.log.read_text(), 30, [dev.log])
        assert dev.machine_state() == "Downloaded"
        assert dev.host.env() == env_before
        assert dev.proc is not None and dev.proc.poll() is None
        clock.write_text("03:59\n")
        assert dev.reboot_and_restart() == PART_B
        wait_for("success", lambda: deployment_done(server, dep), 60, [dev.log])
    finally:
        dev.stop()


def test_an_abort_while_waiting_drops_the_download(
    tmp_path: Path, server: Server, rootfs_artifact
) -> None:
    dev, _ = _device(tmp_path, server)
    env_before, slot_a = dev.host.env(), sha256(dev.host.slot_a)
    server.upload(rootfs_artifact("release-x", size=SIZE))
    dev.start()
    try:
        dep = server.deploy("release-x", [dev.device_id])
        wait_for("the wait", lambda: _downloaded(dev, server, dep), 60, [dev.log])
        server.abort(dep)  # the next status report (each update poll) gets 409
        wait_for("idle", lambda: dev.machine_state() is None, 30, [dev.log])
        assert dev.proc is not None and dev.proc.poll() is None
        shown = server.deployment(dep)
    finally:
        dev.stop()
    assert shown["statistics"]["aborted"] == 1
    assert "aborted" in dev.log.read_text()
    assert dev.reboots == []
    assert dev.host.env() == env_before
    assert sha256(dev.host.slot_a) == slot_a
    assert dev.show_artifact() == "release-0"
    assert dev.store_history()[-1] == ("release-x", "failure")
