"""Scenario 1: standalone update A -> B over HTTP, data kept; then a downgrade refused.

The same update from the media disk, with a reboot after the commit, is
pyupdate-qemu-test's standalone scenario (test_qemu_test_tool.py); this one takes the
URL path of `pyupdate install` on a real device. Back to release 1 over HTTP is a
downgrade (its rootfs-image.version is older than release 2's): the agent refuses it in
one line before it writes anything (AllowDowngrade lifts that: tests/agent/test_downgrade.py)."""

from __future__ import annotations

from qemu_device import Device


def test_standalone_update_over_http_then_a_refused_downgrade(device: Device):
    assert device.artifact() == "release-1"
    assert device.root_device() == "/dev/vda2"
    device.sh("echo precious > /data/user-file && sync")

    session = device.session
    assert session is not None

    def url(name: str) -> str:  # the session's HTTP server serves its work dir
        return f"{session.http_base}/{session.images.updates[name].relative_to(session.work)}"

    rc, out = device.run(f"pyupdate install --reboot-exit-code {url('release-2')}", timeout=600)
    assert rc == 4, out
    env = device.env()
    assert env["upgrade_available"] == "1"
    assert env["mender_boot_part"] == "3" and env["bootcount"] == "0"

    device.strategy.reboot()
    device.expect_boot("AB: trial boot of part 3, bootcount=1 bootlimit=1")
    device.strategy.await_shell()
    assert device.root_device() == "/dev/vda3"
    device.sh("pyupdate commit")
    env = device.env()
    assert env["upgrade_available"] == "0" and env["mender_boot_part"] == "3"
    assert device.artifact() == "release-2"
    assert device.sh("cat /data/user-file").strip() == "precious"
    assert device.sh("cat /data/keep-me").strip() == "data partition survives updates"

    rc, out = device.run(f"pyupdate install {url('release-1')} 2>&1", timeout=600)
    assert rc == 8 and "older than the running software" in out, (rc, out)
    env = device.env()
    assert env["mender_boot_part"] == "3" and env["upgrade_available"] == "0", env
