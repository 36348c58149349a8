"""Scenario 1: standalone update A -> B from a second disk, B -> A over HTTP, data kept.

B -> A is a downgrade (release-1's rootfs-image.version is older than release-2's): the
agent refuses it in one line before writing anything, until AllowDowngrade is set."""

from __future__ import annotations

import shlex

from qemu_device import Device

ALLOW_DOWNGRADE = (
    "import json; p = '/etc/pyupdate/pyupdate.conf'; c = json.load(open(p)); "
    "c['AllowDowngrade'] = True; json.dump(c, open(p, 'w'))"
)


def update_and_commit(device: Device, source: str, name: str, to_part: str) -> None:
    rc, out = device.run(f"pyupdate install --reboot-exit-code {source}", timeout=600)
    assert rc == 4, out
    env = device.env()
    assert env["upgrade_available"] == "1"
    assert env["mender_boot_part"] == to_part and env["bootcount"] == "0"

    device.strategy.reboot()
    device.expect_boot(f"AB: trial boot of part {to_part}, bootcount=1 bootlimit=1")
    device.strategy.await_shell()
    assert device.root_device() == f"/dev/vda{to_part}"
    device.sh("pyupdate commit")
    env = device.env()
    assert env["upgrade_available"] == "0" and env["mender_boot_part"] == to_part

    device.strategy.reboot()
    device.expect_boot(f"AB: booting part {to_part} upgrade_available=0")
    device.strategy.await_shell()
    assert device.root_device() == f"/dev/vda{to_part}"
    assert device.artifact() == name


def test_standalone_update_from_disk_then_over_http(device: Device):
    assert device.artifact() == "release-1"
    assert device.root_device() == "/dev/vda2"
    device.sh("echo precious > /data/user-file && sync")

    media = device.mount_media()
    update_and_commit(device, f"{media}/release-2.mender", "release-2", "3")
    assert device.sh("cat /data/user-file").strip() == "precious"
    assert device.sh("cat /data/keep-me").strip() == "data partition survives updates"

    url = f"{device.session.http_base}/disk/release-1.mender"
    rc, out = device.run(f"pyupdate install {url} 2>&1", timeout=600)
    assert rc == 8 and "older than the running software" in out, (rc, out)
    env = device.env()
    assert env["mender_boot_part"] == "3" and env["upgrade_available"] == "0", env
    device.sh(f"python3 -c {shlex.quote(ALLOW_DOWNGRADE)}")  # on B only: A keeps its own
    update_and_commit(device, url, "release-1", "2")
    assert device.sh("cat /data/user-file").strip() == "precious"
