"""meta-pyupdate's own tasks make the image: it boots, updates, commits and rolls back.

ci/yocto/run_tasks.py runs the layer's recorded tasks (boot script and env
images, fw_env.config, the agent's unit and config, state scripts, the fstab
lines, the artifacts of three builds) on the Debian stand-in rootfs, and the
disk comes from the layer's expanded wks. With PYUPDATE_SNAPSHOTS (a dir with
bitbake/ and openembedded-core/) the layer is expanded live and the disk made by
oe-core's wic; without it, from the committed record and ci/yocto/wks.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import images
import pytest
from qemu_device import Device
from strategy import BootStrategy, DiskImage, QemuDriver, ShellDriver, State

from pyupdate_artifact.image.board import load_board

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "ci" / "yocto"))

import record  # noqa: E402
import run_tasks  # noqa: E402

MACHINE = "qemux86-64"
HARNESS_BOARD = "qemu-x86_64"  # QEMU settings and Debian's U-Boot for this machine


def _record() -> tuple[dict, Path | None]:
    snap = os.environ.get("PYUPDATE_SNAPSHOTS")
    if not snap:
        data = record.load(MACHINE)
        if record.stale(data):
            pytest.fail(record.STALE, pytrace=False)
        return data, None
    import expand

    return expand.expand(Path(snap).resolve(), MACHINE), run_tasks.wic_script(Path(snap))


def _artifact_name(data: dict, build: str) -> str:
    return data["builds"][build]["pyupdate-image-minimal"]["vars"]["PYUPDATE_ARTIFACT_NAME"]


def test_layer_image_boots_updates_commits_and_rolls_back(tmp_path: Path) -> None:
    if os.environ.get("PYUPDATE_BOARD", HARNESS_BOARD) != HARNESS_BOARD:
        pytest.skip(f"the recorded expansion is for {MACHINE} only")
    data, wic = _record()
    started = time.monotonic()
    try:
        out = run_tasks.build(tmp_path / "yocto", data, run_tasks.stand_in_inputs(MACHINE), wic)
    except run_tasks.LayerDefect as exc:
        pytest.fail(f"layer defect: {exc}", pytrace=False)
    print(
        f"layer tasks and disk ({'wic' if wic else 'wks.py'}): {time.monotonic() - started:.0f} s"
    )
    assert not out.defects, "layer defects:\n" + "\n".join(out.defects)
    first, second = _artifact_name(data, "release-1"), _artifact_name(data, "release-2")
    assert first != second
    media = images.media_disk(
        [out.artifacts["release-2"], out.artifacts["broken"]], tmp_path / "media.img"
    )
    # the work dir's trees are no longer needed: the disk and the media hold it all
    subprocess.run(["rm", "-rf", str(tmp_path / "yocto/build")], check=True)

    power = QemuDriver(
        load_board(HARNESS_BOARD), DiskImage(out.disk, (media,)), tmp_path / "console.log"
    )
    strategy = BootStrategy(power, ShellDriver(power))
    device = Device(strategy, None)  # type: ignore[arg-type]  # no HTTP server in this scenario
    try:
        strategy.transition(State.SHELL)
        # slot A, with what the layer put on the image
        assert device.root_device() == "/dev/vda2"
        assert device.artifact() == first
        device.sh("findmnt -n /boot/uboot && findmnt -n /data")
        assert device.env()["mender_boot_part"] == "2"
        device.sh("test -f /etc/pyupdate/scripts/version && test -f /boot/uboot/boot.scr")
        device.sh("echo precious > /data/user-file && sync")

        # standalone update to the second build's artifact, commit on slot B
        usb = device.mount_media()
        rc, text = device.run(f"pyupdate install --reboot-exit-code {usb}/release-2.mender", 600)
        assert rc == 4, text
        device.strategy.reboot()
        device.expect_boot("AB: trial boot of part 3, bootcount=1 bootlimit=1")
        device.strategy.await_shell()
        assert device.root_device() == "/dev/vda3"
        # the artifact's own rootfs must mount the env and data partitions (its fstab)
        device.sh("findmnt -n /boot/uboot && findmnt -n /data")
        device.sh("pyupdate commit")
        assert device.artifact() == second
        assert device.sh("cat /data/user-file").strip() == "precious"

        # a release that panics: U-Boot counts the failed boot and rolls back to B
        usb = device.mount_media()
        rc, text = device.run(f"pyupdate install --reboot-exit-code {usb}/broken.mender", 600)
        assert rc == 4, text
        device.strategy.reboot()
        device.expect_boot("AB: trial boot of part 2, bootcount=1 bootlimit=1")
        device.expect_boot("Kernel panic")
        device.expect_boot("AB: bootlimit exceeded, ROLLBACK from part 2")
        device.expect_boot("AB: booting part 3 upgrade_available=0")
        device.strategy.await_shell()
        assert device.root_device() == "/dev/vda3"
        rc, text = device.run("pyupdate commit")
        assert rc != 0, text
        assert device.artifact() == second
    finally:
        power.off()
        boots = ", ".join(f"{s:.0f}" for s in strategy.boot_seconds)
        print(f"boots to shell: {boots} s; total {time.monotonic() - started:.0f} s")
