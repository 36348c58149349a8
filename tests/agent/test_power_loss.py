"""Power loss: SIGKILL `pyupdate` during the write and during each phase, then go on.

The agent runs as a separate process. Kills during the write are placed by
feeding the artifact through a FIFO up to a random offset; kills during a
phase by a state script from the artifact that blocks while a marker file
exists. After the kill, the next command (install again, commit or rollback)
must finish or roll back cleanly, slot A must be unchanged, and
`show-artifact` must tell the truth (docs/agent.md, "Power loss").
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from pyupdate_agent.store import Store
from pyupdate_testing.host_device import PART_A, PART_B, HostDevice, sha256, write_module_artifact

pytestmark = [pytest.mark.uboot, pytest.mark.slow]

BLOCKER = """#!/bin/sh
# blocks while $KILLTEST_DIR/block-{name} exists, so the test can kill the agent here
[ -n "$KILLTEST_DIR" ] || exit 0
[ -e "$KILLTEST_DIR/block-{name}" ] || exit 0
echo $$ > "$KILLTEST_DIR/at-{name}.tmp" && mv "$KILLTEST_DIR/at-{name}.tmp" "$KILLTEST_DIR/at-{name}"
exec sleep 60
"""
# fails while $KILLTEST_DIR/fail-install exists: a way into the failure path
FAILER = """#!/bin/sh
[ -n "$KILLTEST_DIR" ] && [ -e "$KILLTEST_DIR/fail-install" ] && exit 1
exit 0
"""
POINTS = (
    "ArtifactInstall_Enter_01",
    "ArtifactInstall_Leave_01",
    "ArtifactCommit_Enter_01",
    "ArtifactRollback_Enter_01",
    "ArtifactFailure_Enter_01",
)


@pytest.fixture(scope="module")
def killable(tmp_path_factory, keys) -> Path:
    """A signed rootfs artifact of 3 MiB random data carrying the blocking scripts."""
    import subprocess

    d = tmp_path_factory.mktemp("killable")
    image = d / "image.ext4"
    image.write_bytes(os.urandom(3 << 20))
    cmd = [
        "mender-artifact",
        "write",
        "rootfs-image",
        "-f",
        str(image),
        "-n",
        "release-k",
        "-t",
        "test-device",
        "-o",
        str(d / "k.mender"),
        "--no-progress",
        "-k",
        str(keys.private),
    ]
    for name in POINTS:
        (d / name).write_text(BLOCKER.format(name=name))
        (d / name).chmod(0o755)
        cmd += ["-s", str(d / name)]
    failer = d / "ArtifactInstall_Leave_02_fail"
    failer.write_text(FAILER)
    failer.chmod(0o755)
    cmd += ["-s", str(failer)]
    subprocess.run(cmd, check=True, capture_output=True)
    (d / "image.sha256").write_text(sha256(image))
    return d / "k.mender"


def image_ok(host: HostDevice, art: Path) -> bool:
    size = 3 << 20
    want = (art.parent / "image.sha256").read_text()
    import hashlib

    return hashlib.sha256(host.slot_b.read_bytes()[:size]).hexdigest() == want


def inflight_phase(host: HostDevice) -> str | None:
    store = Store.open(host.data, create=False)
    if store is None:
        return None
    try:
        update = store.inflight()
        return None if update is None else str(update.phase)
    finally:
        store.close()


def show_artifact(host: HostDevice) -> str:
    return host.run("show-artifact").stdout.strip()


def assert_back_on_slot_a(host: HostDevice, a_before: str) -> None:
    """The update is over and undone: env on A, nothing in flight, A untouched and booting."""
    env = host.env()
    assert env["mender_boot_part"] == str(PART_A) and env["upgrade_available"] == "0"
    assert inflight_phase(host) is None
    assert show_artifact(host) == "unknown"
    assert sha256(host.slot_a) == a_before
    assert host.boot() == PART_A


def kill_at_script(host: HostDevice, point: str, *argv: str) -> None:
    marks = host.root / "marks"
    marks.mkdir(exist_ok=True)
    (marks / f"block-{point}").touch()
    proc = host.popen(*argv, env={**os.environ, "KILLTEST_DIR": str(marks)})
    at = marks / f"at-{point}"
    deadline = time.monotonic() + 60
    while not at.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    os.killpg(int(at.read_text()), signal.SIGKILL)  # the orphaned script
    (marks / f"block-{point}").unlink()
    at.unlink()


def kill_during_write(host: HostDevice, art: Path, fraction: float) -> None:
    fifo = host.root / "artifact.fifo"
    os.mkfifo(fifo)
    proc = host.popen("install", str(fifo))
    data = art.read_bytes()
    offset = int(len(data) * fraction)
    with open(fifo, "wb") as f:
        f.write(data[:offset])
        f.flush()
        deadline = time.monotonic() + 30
        while inflight_phase(host) != "download":
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.3)  # let it write what it has
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    fifo.unlink()


@pytest.mark.parametrize("seed", [1, 2])
def test_kill_during_write_then_install_again(host, killable, seed):
    a_before = sha256(host.slot_a)
    env_before = host.env()
    fraction = random.Random(seed).uniform(0.1, 0.95)
    kill_during_write(host, killable, fraction)
    assert host.env() == env_before, f"env changed after a kill at {fraction:.2f}"
    assert inflight_phase(host) == "download"
    assert show_artifact(host) == "unknown"
    result = host.run("install", str(killable))
    assert result.returncode == 0, result.stderr
    assert image_ok(host, killable)
    assert host.env()["mender_boot_part"] == str(PART_B)
    assert sha256(host.slot_a) == a_before
    assert host.boot() == PART_B
    assert host.run("commit").returncode == 0
    assert show_artifact(host) == "release-k"


def test_kill_before_env_switch_then_commit_rolls_back(host, killable):
    a_before = sha256(host.slot_a)
    kill_at_script(host, "ArtifactInstall_Enter_01", "install", str(killable))
    assert inflight_phase(host) == "install"
    result = host.run("commit")
    assert result.returncode == 1 and "rolled back" in result.stderr
    assert_back_on_slot_a(host, a_before)


def test_kill_after_env_switch_then_rollback(host, killable):
    a_before = sha256(host.slot_a)
    kill_at_script(host, "ArtifactInstall_Leave_01", "install", str(killable))
    assert host.env()["upgrade_available"] == "1"  # the switch happened before the kill
    result = host.run("rollback")
    assert result.returncode == 0, result.stderr
    assert_back_on_slot_a(host, a_before)


def test_kill_during_commit_then_commit_finishes(host, killable):
    a_before = sha256(host.slot_a)
    assert host.run("install", str(killable)).returncode == 0
    assert host.boot() == PART_B
    kill_at_script(host, "ArtifactCommit_Enter_01", "commit")
    assert inflight_phase(host) == "commit"
    assert show_artifact(host) == "unknown"  # not committed yet, and it says so
    result = host.run("commit")
    assert result.returncode == 0, result.stderr
    assert show_artifact(host) == "release-k"
    assert host.env()["upgrade_available"] == "0"
    assert sha256(host.slot_a) == a_before


def test_kill_during_rollback_then_install_recovers_first(host, killable):
    a_before = sha256(host.slot_a)
    assert host.run("install", str(killable)).returncode == 0
    kill_at_script(host, "ArtifactRollback_Enter_01", "rollback")
    assert inflight_phase(host) == "rollback"
    # the next command is a new install: it finishes the rollback, then installs
    result = host.run("install", str(killable))
    assert result.returncode == 0, result.stderr
    assert host.env()["mender_boot_part"] == str(PART_B)
    assert image_ok(host, killable)
    assert sha256(host.slot_a) == a_before
    assert show_artifact(host) == "unknown"


def test_kill_during_failure_then_the_failure_path_finishes(host, killable):
    a_before = sha256(host.slot_a)
    marks = host.root / "marks"
    marks.mkdir(exist_ok=True)
    (marks / "fail-install").touch()  # ArtifactInstall_Leave fails after the env switch
    kill_at_script(host, "ArtifactFailure_Enter_01", "install", str(killable))
    assert inflight_phase(host) == "failure"
    env = host.env()  # the rollback states ran before ArtifactFailure, as in mender
    assert env["mender_boot_part"] == str(PART_A) and env["upgrade_available"] == "0"
    assert show_artifact(host) == "unknown"
    # the next command runs the failure path (rollback included) to its end first
    result = host.run("commit")
    assert result.returncode == 1 and "rolled back" in result.stderr, result.stderr
    assert_back_on_slot_a(host, a_before)


# An update module that logs every state it is called for and blocks in ArtifactInstall
# while $KILLTEST_DIR/block-module exists (the BLOCKER protocol above).
KILL_MODULE = """#!/bin/sh
[ -n "$KILLTEST_DIR" ] && echo "$1" >> "$KILLTEST_DIR/module-states"
case "$1" in
    SupportsRollback) echo Yes ;;
    NeedsArtifactReboot) echo No ;;
    ArtifactInstall)
        if [ -n "$KILLTEST_DIR" ] && [ -e "$KILLTEST_DIR/block-module" ]; then
            echo $$ > "$KILLTEST_DIR/at-module.tmp" && mv "$KILLTEST_DIR/at-module.tmp" "$KILLTEST_DIR/at-module"
            exec sleep 60
        fi ;;
esac
exit 0
"""


def test_kill_during_a_module_install_then_the_module_rolls_back(host, keys, tmp_path):
    a_before, env_before = sha256(host.slot_a), host.env()
    module = host.modules / "kill-test"
    module.write_text(KILL_MODULE)
    module.chmod(0o755)
    art = write_module_artifact(
        tmp_path / "m", "kill-test", {"f.txt": b"x"}, "mod-k", key=keys.private
    )
    kill_at_script(host, "module", "install", str(art))
    assert inflight_phase(host) == "install"
    marks = host.root / "marks"
    (marks / "module-states").unlink()
    result = host.run("rollback", env={**os.environ, "KILLTEST_DIR": str(marks)})
    assert result.returncode == 0, result.stderr
    states = (marks / "module-states").read_text().split()
    # the interrupted install is undone through the module, then the failure states
    assert states[states.index("ArtifactRollback") :] == [
        "ArtifactRollback",
        "ArtifactFailure",
        "Cleanup",
    ]
    assert inflight_phase(host) is None
    assert show_artifact(host) == "unknown"
    assert host.env() == env_before and sha256(host.slot_a) == a_before
