"""Power cuts around the env write; the device always boots a good slot.

The cut during the slot write is pyupdate-qemu-test's power-cut scenario
(test_qemu_test_tool.py); these two need a hook into the install.
"""

from __future__ import annotations

from qemu_device import Device

from pyupdate_host.qemutest.target import MEDIA_MOUNT

INSTALL = f"pyupdate install --reboot-exit-code {MEDIA_MOUNT}/release-2.mender"

# Announces each fw_setenv on the console before running the real one, so the
# harness can cut the power while the env is being written.
FW_SETENV_SPY = (
    "printf '#!/bin/sh\\necho FW-SETENV-START > /dev/console\\nexec /usr/bin/fw_setenv \"$@\"\\n'"
    " > /usr/local/bin/fw_setenv && chmod +x /usr/local/bin/fw_setenv"
)


def assert_good_slot(device: Device) -> str:
    """Booted slot is either A committed (release-1) or B on trial (complete release-2)."""
    env = device.env()
    root = device.root_device()
    if env["upgrade_available"] == "1":
        assert root == "/dev/vda3" and env["mender_boot_part"] == "3"
        return "trial-b"
    assert root == "/dev/vda2" and env["mender_boot_part"] == "2"
    assert device.artifact() == "release-1"
    return "a"


def test_power_cut_right_after_install(device: Device):
    device.mount_media()
    rc, out = device.run(INSTALL, timeout=600)
    assert rc == 4, out
    device.power_cut()
    device.power_on_to_shell()
    assert assert_good_slot(device) == "trial-b"
    device.sh("pyupdate commit")
    assert device.artifact() == "release-2"


def test_power_cut_during_fw_setenv(device: Device):
    device.sh(FW_SETENV_SPY)
    device.mount_media()
    device.strategy.power.sendline(INSTALL)
    device.expect_boot("FW-SETENV-START", timeout=600)
    device.power_cut()
    device.power_on_to_shell()
    state = assert_good_slot(device)
    if state == "trial-b":
        device.sh("pyupdate commit")
        assert device.artifact() == "release-2"
        return
    device.sh(FW_SETENV_SPY)
    device.mount_media()
    rc, out = device.run(INSTALL, timeout=600)
    assert rc == 4, out
    device.strategy.reboot()
    device.expect_boot("AB: trial boot of part 3, bootcount=1")
    device.strategy.await_shell()
    device.sh("pyupdate commit")
    assert device.artifact() == "release-2"
