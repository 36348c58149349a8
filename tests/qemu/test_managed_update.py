"""Scenario 4: managed mode. The daemon on the device meets pyupdate-server on the host.

The device is accepted, gets a deployment, reboots into the new slot, commits,
and the server shows success and the new artifact in inventory. A second
deployment of an image that never boots ends `failure`: U-Boot rolls back, the
agent reports it with its log, and the device runs its previous artifact.
"""

from __future__ import annotations

import fleet
from qemu_device import Device

DEPLOY_TIMEOUT = 900


def test_managed_update_then_broken_update_rolls_back(managed_device: Device, fleet_server):
    try:
        _scenario(managed_device, fleet_server)
    except AssertionError as err:
        # the daemon's own account of what happened, for whoever reads the failure
        _, journal = managed_device.run("journalctl -u pyupdate --no-pager | tail -40", 60)
        raise AssertionError(f"{err}\n--- journalctl -u pyupdate ---\n{journal}") from None


def _scenario(device: Device, fleet_server) -> None:
    images = device.session.images
    mgmt = fleet.Management(fleet_server.url)
    device.sh("touch /data/pyupdate-managed && systemctl start pyupdate")

    pending = fleet.wait_for("the device's auth request", lambda: fleet.pending_device(mgmt), 180)
    mgmt.accept(pending)
    device_id = pending["id"]
    fleet.wait_for(
        "inventory from the device",
        lambda: mgmt.inventory(device_id).get("artifact_name") == "release-1",
        180,
    )

    mgmt.upload(images.updates["release-2"])
    first = mgmt.deploy("to release-2", "release-2", [device_id])
    device.expect_boot("AB: trial boot of part 3", timeout=DEPLOY_TIMEOUT)
    device.strategy.await_shell()
    status = fleet.wait_for(
        "the first deployment to finish",
        lambda: fleet.final_status(mgmt, first, device_id),
        DEPLOY_TIMEOUT,
        every=2,
    )
    assert status == "success", fleet.uploaded_log(mgmt, first, device_id)
    assert mgmt.deployment(first)["status"] == "finished"
    fleet.wait_for(
        "inventory to show release-2",
        lambda: mgmt.inventory(device_id).get("artifact_name") == "release-2",
        120,
    )
    assert device.root_device() == "/dev/vda3"
    assert device.env()["upgrade_available"] == "0"
    assert device.artifact() == "release-2"

    mgmt.upload(images.updates["release-broken"])
    second = mgmt.deploy("to a broken image", "release-broken", [device_id])
    device.expect_boot("AB: trial boot of part 2", timeout=DEPLOY_TIMEOUT)
    device.expect_boot("AB: bootlimit exceeded, ROLLBACK from part 2", timeout=DEPLOY_TIMEOUT)
    device.strategy.await_shell()
    status = fleet.wait_for(
        "the second deployment to finish",
        lambda: fleet.final_status(mgmt, second, device_id),
        DEPLOY_TIMEOUT,
        every=2,
    )
    assert status == "failure"
    fleet.wait_for(
        "the device's deployment log", lambda: fleet.uploaded_log(mgmt, second, device_id), 120
    )
    assert device.root_device() == "/dev/vda3"
    assert device.artifact() == "release-2"
    assert mgmt.inventory(device_id).get("artifact_name") == "release-2"
