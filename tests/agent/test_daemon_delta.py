"""Managed delta updates (docs/agent.md, "Delta updates"): the inventory tells the server
what the device runs and that it applies deltas; a delta whose base does not match the
running slot is replaced by the deployment's full artifact (`pyupdate_full_source`).

`pyupdate daemon` runs as a process against a LocalHTTP device API
(pyupdate_testing.fake_device_api) that hands out release-2 as a delta from release-1,
which each device first installs and commits the full way (slot B runs OLD).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyupdate_testing.daemon_device import DaemonDevice, make_daemon_device
from pyupdate_testing.fake_device_api import FakeDeviceAPI, Seen
from pyupdate_testing.host_device import PART_A, PART_B, needs_tools, sha256
from pyupdate_testing.wait import wait_for

pytestmark = [pytest.mark.uboot, needs_tools]

LINE = "base does not match the delta: installing the full artifact"


@pytest.fixture
def made() -> Iterator[list[DaemonDevice]]:
    devices: list[DaemonDevice] = []
    yield devices
    for dev in devices:
        dev.stop()


class Hold:
    """Stops the first download of `path` after `fraction` of it, until released."""

    def __init__(self, path: str, fraction: float) -> None:
        self.path, self.fraction = path, fraction
        self.holding, self.released = threading.Event(), threading.Event()


def _api(delta_set, fallback: bool, hold: Hold | None = None) -> FakeDeviceAPI:
    """Hands out release-2 as the delta (with the full one's link if `fallback`) until a
    final status, and serves both artifacts."""
    files = {
        "/download/delta": delta_set.delta.read_bytes(),
        "/download/full": delta_set.new.read_bytes(),
    }

    def serve(h, seen: Seen) -> None:
        body = files[seen.path]
        if hold is None or seen.path != hold.path or hold.holding.is_set():
            h.reply(200, body)
            return
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[: int(len(body) * hold.fraction)])
        h.wfile.flush()
        hold.holding.set()
        hold.released.wait(60)

    api = FakeDeviceAPI(download=serve, artifact_name="release-2")
    doc = api.deployment()
    doc["artifact"]["source"]["uri"] = f"{api.url}/download/delta"
    if fallback:
        doc["artifact"]["pyupdate_full_source"] = {
            "uri": f"{api.url}/download/full",
            "expire": "2099-01-01T00:00:00Z",
        }

    def hand_out(h, seen: Seen) -> None:
        if any(s in ("success", "failure") for s in api.statuses):
            h.reply(204)
        else:
            h.reply_json(200, doc)

    api.check = hand_out
    return api


def _device(tmp_path: Path, api: FakeDeviceAPI, delta_set, made: list) -> DaemonDevice:
    dev = make_daemon_device(
        tmp_path / "dev",
        api,
        server_url=api.url,
        preauthorize=False,  # type: ignore[arg-type]
    )
    made.append(dev)
    host = dev.host
    assert host.cli("install", str(delta_set.old)) == 0
    assert host.boot() == PART_B
    assert host.cli("commit") == 0
    return dev


def _modify_base(dev: DaemonDevice) -> None:
    """What mounting the root filesystem read-write does: its superblock changes."""
    with open(dev.host.slot_b, "r+b") as slot:
        slot.seek(1024 + 44)
        slot.write(b"\x01\x02\x03\x04")


def _inventory(api: FakeDeviceAPI) -> dict[str, object]:
    puts = [s for s in api.http.seen if s.path.endswith("/inventory/device/attributes")]
    assert puts, "no inventory sent"
    return {a["name"]: a["value"] for a in json.loads(puts[-1].body)}


def _updated(dev: DaemonDevice, api: FakeDeviceAPI, delta_set) -> None:
    """The daemon installs, reboots into slot A, commits; slot A holds exactly NEW."""
    dev.start()
    assert dev.reboot_and_restart(timeout=60) == PART_A
    wait_for("the success report", lambda: "success" in api.statuses, 60, [dev.log])
    new = delta_set.new_image.read_bytes()
    assert dev.host.slot_a.read_bytes()[: len(new)] == new
    wait_for("the commit", lambda: dev.show_artifact() == "release-2", 30, [dev.log])
    assert "failure" not in api.statuses
    assert "Traceback" not in dev.log.read_text()


def test_inventory_names_the_update_modules_and_the_running_image(tmp_path, delta_set, made):
    with _api(delta_set, fallback=True) as api:
        dev = _device(tmp_path, api, delta_set, made)
        (dev.host.modules / "single-file").write_text("#!/bin/sh\n")
        (dev.host.modules / "single-file").chmod(0o755)
        dev.start()
        wait_for(
            "the inventory",
            lambda: any(s.path.endswith("/inventory/device/attributes") for s in api.http.seen),
            30,
            [dev.log],
        )
        attrs = _inventory(api)
        assert "pyupdate-delta" in attrs["update_modules"]  # type: ignore[operator]
        assert "single-file" in attrs["update_modules"]  # type: ignore[operator]
        assert attrs["rootfs-image.checksum"] == delta_set.old_sha()
        assert attrs["rootfs-image.version"] == "release-1"
        # the fixed ones still win over the provides and the scripts
        assert attrs["artifact_name"] == "release-1"
        assert attrs["device_type"] == "test-device"
        assert attrs["hostname"] == "device-1"


def test_delta_with_a_matching_base_is_applied(tmp_path, delta_set, made):
    with _api(delta_set, fallback=True) as api:
        dev = _device(tmp_path, api, delta_set, made)
        _updated(dev, api, delta_set)
        assert {s.path for s in api.downloads()} == {"/download/delta"}
        assert LINE not in dev.log.read_text()


def test_delta_on_a_modified_base_falls_back_to_the_full_artifact(tmp_path, delta_set, made):
    with _api(delta_set, fallback=True) as api:
        dev = _device(tmp_path, api, delta_set, made)
        _modify_base(dev)
        _updated(dev, api, delta_set)
        assert [s.path for s in api.downloads()] == ["/download/delta", "/download/full"]
        assert dev.log.read_text().count(LINE) == 1
        assert dev.store_history()[-1] == ("release-2", "success")
        assert len(dev.store_history()) == 2  # release-1, then one row for the deployment
        # and one deployment log: release-1's, then the delta's line and the full install's
        logs = sorted(dev.host.data.glob("deployments.*.log"))
        assert len(logs) == 2 and LINE in logs[1].read_text()
        text = logs[1].read_text()
        assert text.index(LINE) < text.index('"boot env switched"') < text.index('"committed"')


def test_delta_on_a_modified_base_without_fallback_fails_the_deployment(tmp_path, delta_set, made):
    with _api(delta_set, fallback=False) as api:
        dev = _device(tmp_path, api, delta_set, made)
        _modify_base(dev)
        env, slot_a = dev.host.env(), sha256(dev.host.slot_a)
        dev.start()
        wait_for("the failure report", lambda: "failure" in api.statuses, 60, [dev.log])
        text = dev.log.read_text()
        assert "base does not match the delta" in text and "install the full artifact" in text
        assert "Traceback" not in text
        assert [s.path for s in api.downloads()] == ["/download/delta"]
        assert dev.host.env() == env
        assert sha256(dev.host.slot_a) == slot_a, "the inactive slot was written"
        assert dev.reboots == []
        assert dev.store_history()[-1] == ("release-2", "failure")
        assert any(
            "base does not match" in m["message"] for log in api.logs for m in log["messages"]
        )


def test_power_cut_during_the_fallback_write_starts_the_deployment_over(tmp_path, delta_set, made):
    """Killed while the full artifact is written: after the restart the deployment starts
    over with the delta, meets the mismatch again and installs the full artifact."""
    hold = Hold("/download/full", 0.6)
    with _api(delta_set, fallback=True, hold=hold) as api:
        dev = _device(tmp_path, api, delta_set, made)
        _modify_base(dev)
        env = dev.host.env()
        dev.start()
        assert hold.holding.wait(60), dev.log.read_text()[-3000:]
        dev.stop()  # SIGKILL: the power cut
        hold.released.set()
        assert dev.host.env() == env  # the old slot still boots
        assert dev.host.boot() == PART_B
        _updated(dev, api, delta_set)
        paths = [s.path for s in api.downloads()]
        assert paths == ["/download/delta", "/download/full"] * 2
        assert dev.log.read_text().count(LINE) == 2
        assert dev.store_history()[-1] == ("release-2", "success")
