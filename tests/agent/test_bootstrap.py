"""The bootstrap artifact (agent/bootstrap.py): a freshly flashed device's first start
records the provides the image build put in `<data>/bootstrap.mender`, and removes it.

Mender 3.4's rules: only while the store has no provides, no signature check, only an
empty-payload artifact without depends or scripts, the file removed whatever happened.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pyupdate_host.image.artifact import write_bootstrap_artifact, write_rootfs_artifact
from pyupdate_testing.host_device import DEVICE_TYPE, PART_B, HostDevice

pytestmark = pytest.mark.uboot


def provides(host: HostDevice) -> dict[str, str]:
    out = host.run("show-provides").stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def flash(host: HostDevice, image: bytes, tmp_path: Path, device_type: str = DEVICE_TYPE) -> Path:
    """What `pyupdate-image build` leaves on a disk: `image` in slot A (the slot it boots
    first) and the bootstrap artifact naming its checksum in the agent's data dir."""
    with open(host.slot_a, "r+b") as slot:
        slot.write(image)
    (tmp_path / "slot.img").write_bytes(image)
    boot = host.data / "bootstrap.mender"
    write_bootstrap_artifact(boot, "release-1", device_type, None, image=tmp_path / "slot.img")
    return boot


def test_a_delta_is_a_fresh_devices_first_update(host, delta_set, tmp_path, capsys):
    """No full install first: the bootstrap's checksum is the delta's base."""
    boot = flash(host, delta_set.old_image.read_bytes(), tmp_path)
    assert host.cli("install", str(delta_set.delta)) == 0, capsys.readouterr().err
    assert not boot.exists()
    new = delta_set.new_image.read_bytes()
    assert host.slot_b.read_bytes()[: len(new)] == new
    assert host.boot() == PART_B
    assert host.cli("commit") == 0
    after = provides(host)
    assert after["artifact_name"] == "release-2"
    assert after["rootfs-image.checksum"] == delta_set.new_sha()


def test_the_daemons_first_start_records_the_bootstrap(host, tmp_path):
    """The daemon opens the store at start (daemon/machine.py): show-provides then
    names the build's artifact and checksum before any update."""
    from pyupdate_agent.config import load_config
    from pyupdate_agent.daemon.machine import Daemon
    from pyupdate_agent.daemon.settings import daemon_settings

    boot = flash(host, b"\x5a" * 8192, tmp_path)
    host.write_config(ServerURL="https://127.0.0.1:9")
    config = load_config(host.config_path)
    Daemon(config, host.data, daemon_settings(config, host.data)).store.close()
    assert not boot.exists()
    got = provides(host)
    assert got["artifact_name"] == "release-1"
    assert got["rootfs-image.version"] == "release-1"
    assert len(got["rootfs-image.checksum"]) == 64


def test_a_device_with_a_record_keeps_it_and_the_file_goes(host, rootfs_artifact, tmp_path):
    assert host.cli("install", str(rootfs_artifact("release-7"))) == 0
    host.boot()
    assert host.cli("commit") == 0
    boot = flash(host, b"\x01" * 4096, tmp_path)
    assert host.cli("install", str(rootfs_artifact("release-8"))) == 0
    assert not boot.exists()
    assert "rootfs-image.checksum" in provides(host)  # release-7's, not the bootstrap's
    assert provides(host)["artifact_name"] == "release-7"


@pytest.mark.parametrize("kind", ["rootfs", "other-device", "garbage"])
def test_a_file_that_is_no_bootstrap_is_ignored_with_a_warning_and_removed(
    host, tmp_path, caplog, kind
):
    boot = host.data / "bootstrap.mender"
    if kind == "rootfs":
        (tmp_path / "img").write_bytes(b"\x02" * 4096)
        write_rootfs_artifact(tmp_path / "img", boot, "release-9", DEVICE_TYPE, None)
    elif kind == "other-device":
        flash(host, b"\x03" * 4096, tmp_path, device_type="another-board")
    else:
        boot.write_bytes(b"not an artifact\n" * 10)
    from pyupdate_agent.config import load_config
    from pyupdate_agent.device import Device

    device = Device(load_config(host.config_path), host.data)
    store = device.store()
    assert store is not None
    try:
        assert store.current_provides() is None
    finally:
        store.close()
    assert not boot.exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "bootstrap.mender: ignored: " in warnings[0], warnings
    assert provides(host)["artifact_name"] == "unknown"
