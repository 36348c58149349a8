"""The download in managed mode: streamed into the slot, resumed with `Range` after a
dropped connection (only the missing bytes cross again), started over after an
agent restart (and said so in the deployment log), stopped by an abort.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyupdate_testing.daemon_device import deployment_done, log_lines, make_daemon_device
from pyupdate_testing.host_device import PART_A, PART_B, needs_tools, sha256
from pyupdate_testing.proxies import CountingProxy
from pyupdate_testing.server import free_port, live_server
from pyupdate_testing.wait import wait_for

pytestmark = [pytest.mark.uboot, pytest.mark.peers, needs_tools]

SIZE = 2 << 20
CUT = 700_000


def test_dropped_connection_resumes_with_only_the_missing_range(
    tmp_path: Path, rootfs_artifact
) -> None:
    art = rootfs_artifact("release-r", size=SIZE, random=True)  # random: stays ~SIZE bytes
    port = free_port()
    proxy = CountingProxy(port, cut_after=CUT)
    try:
        with live_server(tmp_path, public_url=f"http://127.0.0.1:{proxy.port}", port=port) as srv:
            srv.upload(art)
            dev = make_daemon_device(tmp_path / "dev", srv)
            dev.start()
            try:
                dep = srv.deploy("release-r", [dev.device_id])
                assert dev.reboot_and_restart() == PART_B
                shown = wait_for("success", lambda: deployment_done(srv, dep), 60, [dev.log])
            finally:
                dev.stop()
    finally:
        proxy.close()
    assert shown["statistics"]["success"] == 1
    gets = [r for r in proxy.requests if r.startswith("GET")]
    assert len(gets) == 2, proxy.requests
    assert "Range" not in gets[0]
    offset = int(re.search(r"bytes=(\d+)-", gets[1]).group(1))
    assert CUT - 2048 < offset <= CUT  # where the cut was, minus the response headers
    size = art.stat().st_size
    # every byte once, plus two sets of response headers
    assert size <= proxy.to_client < size + 2048
    assert "resuming" in dev.log.read_text()


def test_agent_restart_mid_download_starts_over_and_logs_it(
    tmp_path: Path, rootfs_artifact
) -> None:
    art = rootfs_artifact("release-s", size=SIZE, random=True)
    port = free_port()
    proxy = CountingProxy(port, hold_after=CUT)
    try:
        with live_server(tmp_path, public_url=f"http://127.0.0.1:{proxy.port}", port=port) as srv:
            srv.upload(art)
            dev = make_daemon_device(tmp_path / "dev", srv)
            dev.start()
            try:
                dep = srv.deploy("release-s", [dev.device_id])
                assert proxy.holding.wait(60)
                dev.stop()  # SIGKILL mid-download
                proxy.release()
                dev.start()
                assert dev.reboot_and_restart() == PART_B
                shown = wait_for("success", lambda: deployment_done(srv, dep), 60, [dev.log])
                # the device commits after the server heard `success`
                wait_for("the commit", lambda: dev.show_artifact() == "release-s", 30, [dev.log])
            finally:
                dev.stop()
    finally:
        proxy.close()
    assert shown["statistics"]["success"] == 1
    messages = [e["message"] for e in log_lines(dev)]
    assert any("download starts over" in m for m in messages), messages
    assert dev.store_history()[-1] == ("release-s", "success")
    gets = [r for r in proxy.requests if r.startswith("GET")]
    assert len(gets) == 2 and not any("Range" in g for g in gets), proxy.requests
    assert dev.show_artifact() == "release-s"


def test_aborted_deployment_stops_the_device(tmp_path: Path, rootfs_artifact) -> None:
    art = rootfs_artifact("release-a", size=SIZE, random=True)
    port = free_port()
    proxy = CountingProxy(port, hold_after=CUT)
    try:
        with live_server(tmp_path, public_url=f"http://127.0.0.1:{proxy.port}", port=port) as srv:
            srv.upload(art)
            dev = make_daemon_device(tmp_path / "dev", srv)
            slot_a = sha256(dev.host.slot_a)
            env_before = dev.host.env()
            dev.start()
            try:
                dep = srv.deploy("release-a", [dev.device_id])
                assert proxy.holding.wait(60)
                srv.abort(dep)
                proxy.release()  # the download goes on; the next report gets 409
                wait_for("the abort", lambda: "aborted" in dev.log.read_text(), 60, [dev.log])
                wait_for("idle", lambda: dev.machine_state() is None, 30, [dev.log])
                shown = srv.deployment(dep)
                assert dev.proc is not None and dev.proc.poll() is None
            finally:
                dev.stop()
    finally:
        proxy.close()
    assert shown["statistics"]["aborted"] == 1
    assert dev.reboots == []
    assert dev.host.env() == env_before
    assert sha256(dev.host.slot_a) == slot_a
    assert dev.show_artifact() == "release-0"
    assert dev.host.env()["mender_boot_part"] == str(PART_A)
