"""Debian's mender 3.4 client is never handed a delta (docs/deployments.md, "Delta
updates"), even when one's depends match its provides: it gets the full artifact, installs
it and reports success; the deployment counts a full delivery.

The client first installs a release that provides `rootfs-image.checksum` (as a rootfs
artifact does), so a delta from that image, uploaded under the next release's name and
smaller than its full artifact, fits the device by its depends.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from pyupdate_testing import mender_client
from pyupdate_testing.mender_client import DEVICE_TYPE
from pyupdate_testing.server import Server

pytestmark = [pytest.mark.peers, pytest.mark.root, pytest.mark.slow]

MGMT = "/api/management"
CHECKSUM = "ab" * 32  # the image the device "runs": what its first release provides


def _single_file(tmp: Path, name: str, dest: Path, *extra: str, padding: int = 0) -> Path:
    """Debian's single-file module artifact (as single_file_artifact), with extra
    mender-artifact options and an optional incompressible file beside hello.txt."""
    src = tmp / f"{name}-files"
    src.mkdir()
    (src / "dest_dir").write_text(str(dest))
    (src / "filename").write_text("hello.txt")
    (src / "permissions").write_text("0644")
    (src / "hello.txt").write_text(f"installed by {name}\n")
    files = [src / f for f in ("dest_dir", "filename", "permissions", "hello.txt")]
    if padding:
        (src / "padding.bin").write_bytes(os.urandom(padding))
        files.append(src / "padding.bin")
    out = tmp / f"{name}.mender"
    subprocess.run(
        ["mender-artifact", "write", "module-image", "-T", "single-file", "-t", DEVICE_TYPE,
         "-n", name, *[a for f in files for a in ("-f", str(f))], *extra, "-o", str(out)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return out


def _delta(tmp: Path, name: str) -> Path:
    """A delta of the contract's shape from image CHECKSUM, written with pyupdate's writer."""
    from pyupdate_artifact import compression
    from pyupdate_host.writer import ArtifactSpec, PayloadSpec, write_artifact

    body = tmp / "rootfs.delta"
    body.write_bytes(b"delta" * 16)
    out = tmp / f"{name}-delta.mender"
    spec = ArtifactSpec(
        name=name,
        device_types=(DEVICE_TYPE,),
        payload=PayloadSpec(
            type="pyupdate-delta",
            files=(body,),
            provides={"rootfs-image.checksum": "cd" * 32},
            depends={"rootfs-image.checksum": CHECKSUM},
        ),
        compression=compression.by_id("none"),
    )
    write_artifact(out, spec)
    return out


def _wait(what: str, check, timeout: float, log: Path):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.5)
    tail = log.read_text()[-4000:] if log.exists() else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tail}")


def test_mender_client_gets_the_full_artifact_when_a_matching_delta_exists(
    live_server: Server, tmp_path: Path
) -> None:
    api = httpx.Client(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {live_server.token}"},
        timeout=30,
    )
    with mender_client.mender_daemon(tmp_path / "device", live_server.url) as root:
        log = root / "daemon.log"
        device = _wait(
            "the daemon's first auth request",
            lambda: next(iter(api.get(f"{MGMT}/v2/devauth/devices").json()), None),
            60,
            log,
        )
        device_id, auth_id = device["id"], device["auth_sets"][0]["id"]
        r = api.put(
            f"{MGMT}/v2/devauth/devices/{device_id}/auth/{auth_id}/status",
            json={"status": "accepted"},
        )
        assert r.status_code == 204

        def inventory() -> dict:
            data = api.get(f"{MGMT}/v1/inventory/devices/{device_id}").json()
            return {a["name"]: a["value"] for a in data.get("attributes", [])}

        def deploy_and_finish(name: str) -> str:
            r = api.post(
                f"{MGMT}/v1/deployments/deployments",
                json={"name": name, "artifact_name": name, "devices": [device_id]},
            )
            assert r.status_code == 201, r.text
            dep = r.headers["location"].rsplit("/", 1)[1]

            def finished() -> dict | None:
                shown = api.get(f"{MGMT}/v1/deployments/deployments/{dep}").json()
                return shown if shown["status"] == "finished" else None

            shown = _wait(f"{name} to finish", finished, 120, log)
            assert shown["statistics"]["success"] == 1, shown
            return dep

        dest = root / "dest"
        base = _single_file(tmp_path, "peer-base", dest, "-p", f"rootfs-image.checksum:{CHECKSUM}")
        full = _single_file(tmp_path, "peer-next", dest, padding=64 * 1024)
        delta = _delta(tmp_path, "peer-next")
        assert delta.stat().st_size < full.stat().st_size  # a pyupdate agent would get it
        for path in (base, full, delta):
            with open(path, "rb") as fh:
                r = api.post(
                    f"{MGMT}/v1/deployments/artifacts", files={"artifact": (path.name, fh)}
                )
            assert r.status_code == 201, r.text

        deploy_and_finish("peer-base")
        # the client now provides the delta's base (what it sends with its deployment
        # checks), and is no pyupdate agent
        shown = subprocess.run(
            ["mender", "--config", str(root / "etc" / "mender.conf"), "--data",
             str(root / "data"), "show-provides"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert f"rootfs-image.checksum={CHECKSUM}" in shown.stdout, shown
        assert "pyupdate_version" not in inventory()

        dep = deploy_and_finish("peer-next")
        assert (dest / "hello.txt").read_text() == "installed by peer-next\n"
        [row] = api.get(f"{MGMT}/v1/deployments/deployments/{dep}/devices").json()
        assert (row["status"], row["delivery"]) == ("success", "full")
        assert row["bytes_sent"] == row["full_size"] == full.stat().st_size
        delivery = api.get(f"{MGMT}/v1/deployments/deployments/{dep}").json()["delivery"]
        assert (delivery["full"], delivery["delta"], delivery["bytes_saved"]) == (1, 0, 0)
