"""Scenario 2: a rootfs that panics; U-Boot counts the failed boot and rolls back to A."""

from __future__ import annotations

from qemu_device import Device


def test_broken_update_rolls_back_and_agent_tells_the_truth(device: Device):
    assert device.artifact() == "release-1"
    media = device.mount_media()
    rc, out = device.run(f"pyupdate install --reboot-exit-code {media}/release-broken.mender", 600)
    assert rc == 4, out
    assert device.env()["upgrade_available"] == "1"

    device.strategy.reboot()
    device.expect_boot("AB: trial boot of part 3, bootcount=1 bootlimit=1")
    device.expect_boot("Kernel panic")
    # panic=5 resets the machine; the next boot.scr counts past bootlimit
    device.expect_boot("AB: trial boot of part 3, bootcount=2 bootlimit=1")
    device.expect_boot("AB: bootlimit exceeded, ROLLBACK from part 3")
    device.expect_boot("AB: booting part 2 upgrade_available=0")
    device.strategy.await_shell()

    assert device.root_device() == "/dev/vda2"
    env = device.env()
    assert env["mender_boot_part"] == "2" and env["upgrade_available"] == "0"
    # Nothing to commit: the agent sees the bootloader rolled back and records the failure.
    rc, out = device.run("pyupdate commit")
    assert rc != 0, out
    assert device.artifact() == "release-1"
    # and a new install still works from here
    media = device.mount_media()
    rc, out = device.run(f"pyupdate install --reboot-exit-code {media}/release-2.mender", 600)
    assert rc == 4, out
