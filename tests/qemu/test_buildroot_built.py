"""What a real Buildroot build of buildroot-ext made: boot, update, commit, roll back, managed.

Opt-in (`make buildroot-image` then `make buildroot-test`): PYUPDATE_BUILDROOT_OUT
names ci/buildroot/build.sh's output for one board (WORK/BOARD), next to which
the script left BOARD-release-1/ (disk.img, U-Boot, board config, the signed
artifact and its key pair) and BOARD-release-2/ (the next release's artifact
and slot image). Everything booted here came out of Buildroot: toolchain,
kernel, U-Boot, BusyBox, Python, the agent and the post-image script's disk.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import fleet
import images
import pytest
from strategy import GUEST_HOST_IP, BootStrategy, DiskImage, QemuDriver, ShellDriver, State

from pyupdate_artifact.image.board import Board, load_board

OUT = Path(os.environ.get("PYUPDATE_BUILDROOT_OUT", "build/buildroot/qemu-x86_64")).resolve()
RELEASE_1 = OUT.parent / f"{OUT.name}-release-1"
RELEASE_2 = OUT.parent / f"{OUT.name}-release-2"
DEPLOY_TIMEOUT = 900


class BuildrootDevice:
    """A Buildroot-built machine at its root shell (BusyBox: no findmnt, no systemd)."""

    def __init__(
        self, board: Board, disk: Path, media: Path | None, log: Path, forwards: dict[int, int]
    ):
        extra = (media,) if media else ()
        self.power = QemuDriver(board, DiskImage(disk, extra), log, forwards=forwards)
        self.strategy = BootStrategy(self.power, ShellDriver(self.power))

    def sh(self, cmd: str, timeout: float = 300.0) -> str:
        return self.strategy.shell.check(cmd, timeout)

    def run(self, cmd: str, timeout: float = 300.0) -> tuple[int, str]:
        return self.strategy.shell.run(cmd, timeout)

    def root_part(self) -> str:
        return next(w for w in self.sh("cat /proc/cmdline").split() if w.startswith("root="))[5:]

    def mounted(self) -> dict[str, str]:
        lines = self.sh("cat /proc/mounts").splitlines()
        return {f.split()[1]: f.split()[0] for f in lines if len(f.split()) > 2}

    def env(self) -> dict[str, str]:
        out = self.sh("fw_printenv mender_boot_part upgrade_available bootcount")
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def artifact(self) -> str:
        return self.sh("pyupdate show-artifact").strip()

    def expect(self, pattern: str, timeout: float = 300.0) -> None:
        self.power.expect(pattern, timeout)


@pytest.fixture(scope="module")
def built() -> dict[str, Path]:
    needed = {
        "disk": RELEASE_1 / "disk.img",
        "board": RELEASE_1 / "board.json",
        "key": RELEASE_1 / "signing-key.pem",
        "release-2": RELEASE_2 / "pyupdate-buildroot-2.mender",
        "rootfs-2": RELEASE_2 / "rootfs.ext4",
    }
    missing = [str(p) for p in needed.values() if not p.exists()]
    if missing:
        pytest.fail(
            f"no Buildroot build output: run `make buildroot-image` first ({missing[0]})",
            pytrace=False,
        )
    return needed


def broken_artifact(built: dict[str, Path], board: Board, work: Path) -> Path:
    """Release 2's slot without BusyBox: no init and no shell, so the kernel panics."""
    slot = work / "broken.ext4"
    subprocess.run(["cp", "--sparse=always", str(built["rootfs-2"]), str(slot)], check=True)
    subprocess.run(
        ["debugfs", "-w", "-R", "rm /bin/busybox", str(slot)], check=True, capture_output=True
    )
    out = work / "pyupdate-buildroot-broken.mender"
    write = [str(Path(sys.executable).parent / "pyupdate-artifact"), "write", "rootfs-image"]
    write += ["-f", str(slot), "-n", "pyupdate-buildroot-broken", "-t", board.device_type]
    subprocess.run([*write, "-k", str(built["key"]), "-o", str(out), "--quiet"], check=True)
    return out


def boot(
    built: dict[str, Path],
    tmp_path: Path,
    media: Path | None = None,
    forwards: dict[int, int] | None = None,
) -> Iterator[BuildrootDevice]:
    disk = tmp_path / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(built["disk"]), str(disk)], check=True)
    device = BuildrootDevice(
        load_board(str(built["board"])), disk, media, tmp_path / "console.log", forwards or {}
    )
    try:
        device.strategy.transition(State.SHELL)
        yield device
    finally:
        device.power.off()
        print(
            f"console: {tmp_path / 'console.log'}; boots to shell: {device.strategy.boot_seconds}"
        )


def install_and_reboot(device: BuildrootDevice, artifact: str, to_part: str) -> None:
    rc, out = device.run(f"pyupdate install --reboot-exit-code {artifact}", timeout=900)
    assert rc == 4, out
    env = device.env()
    assert env["upgrade_available"] == "1" and env["mender_boot_part"] == to_part
    device.strategy.reboot()
    device.expect(f"AB: trial boot of part {to_part}, bootcount=1")


def test_standalone_update_commit_then_broken_update_rolls_back(built, tmp_path: Path) -> None:
    board = load_board(str(built["board"]))
    broken = broken_artifact(built, board, tmp_path)
    media = images.media_disk([built["release-2"], broken], tmp_path / "media.img")
    for device in boot(built, tmp_path, media):
        # what the build put on the disk: slot A, the boot partition and /data mounted
        assert device.root_part() == board.linux_partition(2)
        mounts = device.mounted()
        assert "/boot/uboot" in mounts and "/data" in mounts, mounts
        assert device.artifact() == "pyupdate-buildroot-1"
        assert device.env()["mender_boot_part"] == "2"
        device.sh("echo precious > /data/user-file && sync")
        device.sh("mkdir -p /media && mount -o ro /dev/vdb /media")

        install_and_reboot(device, "/media/pyupdate-buildroot-2.mender", "3")
        device.strategy.await_shell()
        assert device.root_part() == board.linux_partition(3)
        device.sh("pyupdate commit")
        assert device.env()["upgrade_available"] == "0"
        assert device.artifact() == "pyupdate-buildroot-2"
        assert device.sh("cat /data/user-file").strip() == "precious"

        device.sh("mkdir -p /media && mount -o ro /dev/vdb /media")
        install_and_reboot(device, "/media/pyupdate-buildroot-broken.mender", "2")
        device.expect("AB: bootlimit exceeded, ROLLBACK from part 2", timeout=600)
        device.strategy.await_shell()
        assert device.root_part() == board.linux_partition(3)
        assert device.artifact() == "pyupdate-buildroot-2"
        # the agent records the failed update on its next start
        rc, out = device.run("pyupdate commit")
        assert rc != 0, out


def start_daemon(device: BuildrootDevice) -> None:
    """The build's config has no server (standalone): point this slot's agent at ours."""
    url = f"http://{GUEST_HOST_IP}:{images.SERVER_GUEST_PORT}"
    settings = f'"ServerURL": "{url}", "UpdatePollIntervalSeconds": 5, '
    settings += '"InventoryPollIntervalSeconds": 30, "RetryPollIntervalSeconds": 5,'
    device.sh(f"sed -i '1s|^{{$|{{ {settings}|' /etc/pyupdate/pyupdate.conf")
    device.sh("/etc/init.d/S42pyupdate start")


def test_managed_update_through_the_bundled_server(built, tmp_path: Path) -> None:
    server = fleet.Server(tmp_path / "server-data", tmp_path / "server.log")
    try:
        forwards = {images.SERVER_GUEST_PORT: server.port}
        for device in boot(built, tmp_path, forwards=forwards):
            managed_update(device, fleet.Management(server.url), built["release-2"])
    finally:
        server.stop()


def managed_update(device: BuildrootDevice, mgmt: fleet.Management, release_2: Path) -> None:
    start_daemon(device)
    pending = fleet.wait_for("the device's auth request", lambda: fleet.pending_device(mgmt), 300)
    mgmt.accept(pending)
    device_id = pending["id"]
    mgmt.upload(release_2)
    deployment = mgmt.deploy("to release 2", "pyupdate-buildroot-2", [device_id])
    device.expect("AB: trial boot of part 3", timeout=DEPLOY_TIMEOUT)
    device.strategy.await_shell()
    # the new slot's agent resumes the deployment: commit, then report
    start_daemon(device)
    status = fleet.wait_for(
        "the deployment to finish",
        lambda: fleet.final_status(mgmt, deployment, device_id),
        DEPLOY_TIMEOUT,
        every=2,
    )
    assert status == "success", fleet.uploaded_log(mgmt, deployment, device_id)
    assert device.artifact() == "pyupdate-buildroot-2"
    assert device.env()["upgrade_available"] == "0"
