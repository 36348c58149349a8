"""`pyupdate daemon` against the real `pyupdate-server serve`: rootfs and module
deployments, a slot that does not boot, a commit script veto, the server down
after the reboot. Host mode: file slots, the env file driven by fw_setenv, the
bootloader played by bootloader_sim between daemon runs (pyupdate_testing.daemon_device).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyupdate_testing.daemon_device import (
    DaemonDevice,
    deployment_done,
    log_lines,
    make_daemon_device,
)
from pyupdate_testing.host_device import PART_A, PART_B, needs_tools, sha256
from pyupdate_testing.server import Server, live_server
from pyupdate_testing.wait import wait_for

pytestmark = [pytest.mark.uboot, pytest.mark.peers, needs_tools]

TRACE_SCRIPT = '#!/bin/sh\necho {name} >> "$TRACE"\n'
UPDATE_STATES = [
    "Download_Enter_00",
    "Download_Leave_00",
    "ArtifactInstall_Enter_00",
    "ArtifactInstall_Leave_00",
    "ArtifactReboot_Enter_00",
    "ArtifactReboot_Leave_00",
    "ArtifactCommit_Enter_00",
    "ArtifactCommit_Leave_00",
]
ROOTFS_SCRIPTS = ["Idle_Enter_00", "Idle_Leave_00", "Sync_Enter_00", "Sync_Leave_00"]
ROOTFS_SCRIPTS += ["Download_Enter_00", "Download_Leave_00"]
ARTIFACT_SCRIPTS = [s for s in UPDATE_STATES if s.startswith("Artifact")]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with live_server(tmp_path) as srv:
        yield srv


@pytest.fixture
def traced_scripts(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, ...]:
    """mender-artifact `-s` arguments: every Artifact* script appends its name to $TRACE."""
    d = tmp_path_factory.mktemp("scripts")
    args: list[str] = []
    for name in ARTIFACT_SCRIPTS:
        (d / name).write_text(TRACE_SCRIPT.format(name=name))
        (d / name).chmod(0o755)
        args += ["-s", str(d / name)]
    return tuple(args)


def _device(tmp_path: Path, server: Server, **config: object) -> DaemonDevice:
    dev = make_daemon_device(tmp_path / "dev", server, **config)
    for name in ROOTFS_SCRIPTS:
        script = dev.host.etc_scripts / name
        script.write_text(TRACE_SCRIPT.format(name=name))
        script.chmod(0o755)
    (dev.host.etc_scripts / "version").write_text("3")
    dev.env_extra["TRACE"] = str(dev.root / "trace")
    return dev


def _trace(dev: DaemonDevice) -> list[str]:
    path = dev.root / "trace"
    return path.read_text().split() if path.exists() else []


def _image_sha(size: int, name: str) -> str:
    return hashlib.sha256(hashlib.sha256(name.encode()).digest() * (size // 32)).hexdigest()


def test_rootfs_deployment_reboots_verifies_commits_and_reports_success(
    tmp_path: Path, server: Server, rootfs_artifact, traced_scripts
) -> None:
    dev = _device(tmp_path, server)
    server.upload(rootfs_artifact("release-1", size=1 << 20, extra=traced_scripts))
    dev.start()
    try:
        wait_for(
            "inventory", lambda: server.inventory(dev.device_id).get("hostname"), 30, [dev.log]
        )
        inv = server.inventory(dev.device_id)
        assert inv["artifact_name"] == "release-0"
        assert inv["device_type"] == "test-device"
        dep = server.deploy("release-1", [dev.device_id])

        assert dev.reboot_and_restart() == PART_B  # the daemon ran RebootCommand
        shown = wait_for("success", lambda: deployment_done(server, dep), 60, [dev.log])
        assert shown["statistics"]["success"] == 1
        wait_for("inventory update", lambda: server.inventory(dev.device_id).get(
            "artifact_name") == "release-1", 30, [dev.log])  # fmt: skip
    finally:
        dev.stop()
    assert dev.reboots == ["reboot"]
    env = dev.host.env()
    assert (env["mender_boot_part"], env["upgrade_available"]) == (str(PART_B), "0")
    assert dev.show_artifact() == "release-1"
    with open(dev.host.slot_b, "rb") as f:
        assert hashlib.sha256(f.read(1 << 20)).hexdigest() == _image_sha(1 << 20, "release-1")
    trace = _trace(dev)
    assert [t for t in trace if t in UPDATE_STATES] == UPDATE_STATES
    assert {"Idle_Enter_00", "Idle_Leave_00", "Sync_Enter_00", "Sync_Leave_00"} <= set(trace)
    states = [e.get("state") for e in log_lines(dev) if e["message"] == "phase"]
    assert states == ["download", "install", "installed", "commit"]


def test_module_deployment_without_reboot_succeeds(
    tmp_path: Path, server: Server, module_artifact
) -> None:
    dev = _device(tmp_path, server)
    dest = tmp_path / "dest"
    dest.mkdir()
    art = module_artifact(
        "single-file",
        {"dest_dir": str(dest).encode(), "filename": b"app.conf", "permissions": b"0644",
         "app.conf": b"managed\n"},
        name="app-2",
    )  # fmt: skip
    server.upload(art)
    dev.start()
    try:
        dep = server.deploy("app-2", [dev.device_id])
        shown = wait_for("success", lambda: deployment_done(server, dep), 60, [dev.log])
        # `success` reaches the server before the device's own commit (ArtifactCommit,
        # Cleanup, provides), as in Mender: wait for that too before stopping the daemon
        wait_for("the commit", lambda: dev.show_artifact() == "app-2", 30, [dev.log])
    finally:
        dev.stop()
    assert shown["statistics"]["success"] == 1
    assert (dest / "app.conf").read_text() == "managed\n"
    assert dev.reboots == []


def test_slot_that_does_not_boot_ends_failure_with_old_artifact(
    tmp_path: Path, server: Server, rootfs_artifact
) -> None:
    dev = _device(tmp_path, server)
    slot_a = sha256(dev.host.slot_a)
    server.upload(rootfs_artifact("release-bad"))
    dev.start()
    try:
        dep = server.deploy("release-bad", [dev.device_id])
        dev.wait_stopped(60)
        assert dev.host.boot() == PART_B  # trial boot of B... which hangs: the board resets
        assert dev.host.boot() == PART_A  # bootlimit reached: the bootloader falls back
        dev.start()
        shown = wait_for("failure", lambda: deployment_done(server, dep), 60, [dev.log])
        assert shown["statistics"]["failure"] == 1
        device_log = wait_for("log", lambda: server.device_log(dep, dev.device_id), 30)
    finally:
        dev.stop()
    assert "did not boot" in device_log
    assert dev.show_artifact() == "release-0"
    assert sha256(dev.host.slot_a) == slot_a
    env = dev.host.env()
    assert (env["mender_boot_part"], env["upgrade_available"]) == (str(PART_A), "0")
    assert dev.reboots == ["reboot"]  # no rollback reboot: the old slot already runs


def test_commit_script_veto_rolls_back_and_reboots_into_old_slot(
    tmp_path: Path, server: Server, rootfs_artifact, tmp_path_factory
) -> None:
    veto = tmp_path_factory.mktemp("veto") / "ArtifactCommit_Enter_00"
    veto.write_text('#!/bin/sh\necho "health check failed" >&2\nexit 1\n')
    veto.chmod(0o755)
    dev = _device(tmp_path, server)
    server.upload(rootfs_artifact("release-veto", extra=("-s", str(veto))))
    dev.start()
    try:
        dep = server.deploy("release-veto", [dev.device_id])
        assert dev.reboot_and_restart() == PART_B
        assert dev.reboot_and_restart() == PART_A  # the rollback reboot
        shown = wait_for("failure", lambda: deployment_done(server, dep), 60, [dev.log])
        device_log = wait_for("log", lambda: server.device_log(dep, dev.device_id), 30)
    finally:
        dev.stop()
    assert shown["statistics"]["failure"] == 1
    assert "health check failed" in device_log
    assert dev.reboots == ["reboot", "reboot"]
    assert dev.show_artifact() == "release-0"
    env = dev.host.env()
    assert (env["mender_boot_part"], env["upgrade_available"]) == (str(PART_A), "0")


def test_server_down_after_reboot_rolls_back_and_reports_failure_once_back(
    tmp_path: Path, server: Server, rootfs_artifact
) -> None:
    dev = _device(tmp_path, server, CommitReportDeadlineSeconds=3)
    server.upload(rootfs_artifact("release-2"))
    dev.start()
    try:
        dep = server.deploy("release-2", [dev.device_id])
        dev.wait_stopped(60)
        server.stop()
        assert dev.host.boot() == PART_B
        dev.start()  # cannot report success before the deadline: rolls back, reboots
        assert dev.reboot_and_restart() == PART_A
        wait_for("failure pending", lambda: "cannot report the result yet" in dev.log.read_text(),
                 30, [dev.log])  # fmt: skip
        server.start_again()
        shown = wait_for("failure", lambda: deployment_done(server, dep), 60, [dev.log])
        device_log = wait_for("log", lambda: server.device_log(dep, dev.device_id), 30)
    finally:
        dev.stop()
    assert shown["statistics"]["failure"] == 1
    assert "unreachable" in device_log
    assert dev.show_artifact() == "release-0"
    env = dev.host.env()
    assert (env["mender_boot_part"], env["upgrade_available"]) == (str(PART_A), "0")
    assert "success" not in [h[1] for h in dev.store_history()]
