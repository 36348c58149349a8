"""Delta hand-out over HTTP (docs/deployments.md, "Delta updates"): which devices get a
delta, the fallback link, what the deployment counts; uploaded deltas and the 409 rule.

Devices speak as simulated clients: "pyupdate-like" ones report `pyupdate_version` and
`update_modules` with `pyupdate-delta` in their inventory, as the agent does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from delta_helpers import DEVICE_TYPE, delta_shaped, image, rootfs_artifact, sha256
from fastapi.testclient import TestClient
from server_helpers import accept, fetch, make_device, upload

from pyupdate_server.app import create_app
from pyupdate_server.services.users import create_user

DEV = "/api/devices/v1/deployments/device/deployments"
DEV2 = "/api/devices/v2/deployments/device/deployments"
INV = "/api/devices/v1/inventory/device/attributes"
MGMT = "/api/management/v1/deployments"
PYUPDATE = {"pyupdate_version": "0.1.0", "update_modules": ["rootfs-image", "pyupdate-delta"]}


@pytest.fixture
def client(settings) -> Iterator[TestClient]:
    # no background generation here: what is handed out is decided by the uploads alone
    with TestClient(create_app(settings.replace(delta_generation=False))) as c:
        yield c


@pytest.fixture
def admin(client) -> dict[str, str]:
    from server_helpers import ADMIN

    with client.app.state.server.db.write() as session:
        create_user(session, *ADMIN)
    token = client.post("/api/management/v1/useradm/auth/login", auth=ADMIN).text
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def releases(client, admin, tmp_path):
    """r1 (image A), r2 (image B) and an uploaded delta A -> B named r2."""
    a, b = image(tmp_path, "r1"), image(tmp_path, "r2", seed=1)
    full = rootfs_artifact(tmp_path, "r2", b)
    for path in (rootfs_artifact(tmp_path, "r1", a), full, delta_shaped(tmp_path, "r2", a, b)):
        assert upload(client, admin, path).status_code == 201
    return sha256(a), sha256(b), full.stat().st_size


def _device(client, admin, name, inventory):
    device = make_device(client, name)
    device_id = accept(client, admin, device)
    attrs = [{"name": k, "value": v} for k, v in inventory.items()]
    assert client.patch(INV, json=attrs, headers=device.headers).status_code == 200
    return device, device_id


def _next(client, device, checksum):
    provides = {
        "artifact_name": "r1",
        "device_type": DEVICE_TYPE,
        "rootfs-image.checksum": checksum,
    }
    r = client.post(f"{DEV2}/next", json={"device_provides": provides}, headers=device.headers)
    assert r.status_code == 200, r.text
    return r.json()


def _deploy(client, admin, ids):
    r = client.post(
        f"{MGMT}/deployments",
        json={"name": "to r2", "artifact_name": "r2", "devices": ids},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return r.headers["location"].rsplit("/", 1)[1]


def _kind(client, admin, artifact_id):
    return client.get(f"{MGMT}/artifacts/{artifact_id}", headers=admin).json()["kind"]


def test_devices_on_the_base_get_the_delta_others_the_full_artifact(client, admin, releases):
    old, _, full_size = releases
    on_base = [
        _device(client, admin, f"p{i}", {**PYUPDATE, "rootfs-image.checksum": old})
        for i in range(2)
    ]
    elsewhere = _device(client, admin, "p-other", {**PYUPDATE, "rootfs-image.checksum": "c" * 64})
    # update_modules names the delta module, but no pyupdate_version: not our agent
    imposter = _device(
        client,
        admin,
        "modules-only",
        {"update_modules": ["pyupdate-delta"], "rootfs-image.checksum": old},
    )
    dep = _deploy(client, admin, [d[1] for d in (*on_base, elsewhere, imposter)])

    for device, _ in on_base:
        body = _next(client, device, old)
        assert _kind(client, admin, body["artifact"]["id"]) == "delta"
        assert body["artifact"]["artifact_name"] == "r2"
        fallback = body["artifact"]["pyupdate_full_source"]
        assert set(fallback) == {"uri", "expire"} and fallback["expire"].endswith("Z")
    for device, _ in (elsewhere, imposter):
        body = _next(client, device, old if device is imposter[0] else "c" * 64)
        assert _kind(client, admin, body["artifact"]["id"]) == "full"
        assert "pyupdate_full_source" not in body["artifact"]  # Mender's answer, unchanged

    shown = client.get(f"{MGMT}/deployments/{dep}", headers=admin).json()
    delivery = shown["delivery"]
    assert (delivery["delta"], delivery["full"], delivery["fallback"]) == (2, 2, 0)
    delta_size = client.get(f"{MGMT}/artifacts", headers=admin, params={"name": "r2"}).json()
    delta_size = next(a["size"] for a in delta_size if a["kind"] == "delta")
    assert delivery["bytes_sent"] == 2 * delta_size + 2 * full_size
    assert delivery["bytes_saved"] == 2 * (full_size - delta_size)
    rows = {
        d["id"]: d for d in client.get(f"{MGMT}/deployments/{dep}/devices", headers=admin).json()
    }
    assert rows[on_base[0][1]]["delivery"] == "delta"
    assert rows[on_base[0][1]]["full_size"] == full_size
    assert rows[imposter[1]]["delivery"] == "full"


def test_the_in_flight_delta_is_handed_out_again_with_its_fallback(client, admin, releases):
    old, _, _ = releases
    device, device_id = _device(client, admin, "p", {**PYUPDATE, "rootfs-image.checksum": old})
    _deploy(client, admin, [device_id])
    first = _next(client, device, old)
    again = _next(client, device, old)
    assert again["artifact"]["id"] == first["artifact"]["id"]
    assert "pyupdate_full_source" in again["artifact"]


@pytest.mark.s3
def test_the_fallback_link_records_fallback_and_redirects_to_the_full_artifact(
    client, admin, releases, store
):
    old, _, full_size = releases
    device, device_id = _device(client, admin, "p", {**PYUPDATE, "rootfs-image.checksum": old})
    dep = _deploy(client, admin, [device_id])
    body = _next(client, device, old)
    link = body["artifact"]["pyupdate_full_source"]["uri"]
    # no Authorization: the link is the credential
    r = client.get(link, follow_redirects=False)
    assert r.status_code == 302
    full = fetch(client, r.headers["location"], follow_redirects=True)
    assert full.status_code == 200 and len(full.content) == full_size
    row = client.get(f"{MGMT}/deployments/{dep}/devices", headers=admin).json()[0]
    assert (row["delivery"], row["bytes_sent"], row["full_size"]) == (
        "fallback",
        full_size,
        full_size,
    )
    delivery = client.get(f"{MGMT}/deployments/{dep}", headers=admin).json()["delivery"]
    assert (delivery["delta"], delivery["fallback"], delivery["bytes_saved"]) == (0, 1, 0)
    # followed twice (a resumed download): still one fallback, nothing else changes
    assert client.get(link, follow_redirects=False).status_code == 302
    assert client.get(f"{MGMT}/deployments/{dep}", headers=admin).json()["delivery"] == delivery
    # a tampered or foreign link is refused, and records nothing
    assert client.get(link.replace("x-men-signature=", "x-men-signature=0")).status_code == 403
    other = link.replace(device_id, "0" * 36)
    assert client.get(other, follow_redirects=False).status_code == 403


def test_a_device_that_fell_back_is_sent_the_full_artifact_on_its_retry(client, admin, releases):
    old, _, _ = releases
    device, device_id = _device(client, admin, "p", {**PYUPDATE, "rootfs-image.checksum": old})
    r = client.post(
        f"{MGMT}/deployments",
        json={"name": "retry", "artifact_name": "r2", "devices": [device_id], "retries": 1},
        headers=admin,
    )
    dep = r.headers["location"].rsplit("/", 1)[1]
    body = _next(client, device, old)
    assert (
        client.get(
            body["artifact"]["pyupdate_full_source"]["uri"], follow_redirects=False
        ).status_code
        == 302
    )
    assert (
        client.put(
            f"{DEV}/{dep}/status", json={"status": "failure"}, headers=device.headers
        ).status_code
        == 204
    )
    again = _next(client, device, old)
    assert _kind(client, admin, again["artifact"]["id"]) == "full"


def test_mender_clients_never_get_a_delta_even_when_its_depends_match(client, admin, releases):
    old, _, _ = releases
    # what the Mender 3.4 client reports: no pyupdate_version, its own module list
    device, device_id = _device(
        client,
        admin,
        "mender",
        {"update_modules": ["rootfs-image", "single-file"], "rootfs-image.checksum": old},
    )
    _deploy(client, admin, [device_id])
    body = _next(client, device, old)
    assert _kind(client, admin, body["artifact"]["id"]) == "full"
    assert "pyupdate_full_source" not in body["artifact"]


def test_a_delta_is_preferred_only_when_smaller(client, admin, tmp_path):
    a, b = image(tmp_path, "s1", size=8192), image(tmp_path, "s2", size=8192, seed=1)
    for path in (
        rootfs_artifact(tmp_path, "s2", b, compression="gzip"),
        delta_shaped(tmp_path, "s2", a, b, body=bytes(range(256)) * 400),  # larger than s2
    ):
        assert upload(client, admin, path).status_code == 201
    device, device_id = _device(
        client, admin, "p", {**PYUPDATE, "rootfs-image.checksum": sha256(a)}
    )
    r = client.post(
        f"{MGMT}/deployments",
        json={"name": "x", "artifact_name": "s2", "devices": [device_id]},
        headers=admin,
    )
    assert r.status_code == 201
    assert _kind(client, admin, _next(client, device, sha256(a))["artifact"]["id"]) == "full"


def test_uploaded_deltas_are_artifacts_of_the_same_name_with_their_own_depends(
    client, admin, tmp_path, releases
):
    old, _, _ = releases
    listed = client.get(f"{MGMT}/artifacts", headers=admin, params={"name": "r2"}).json()
    kinds = sorted((a["kind"], a["generated"]) for a in listed)
    assert kinds == [("delta", False), ("full", False)]
    delta = next(a for a in listed if a["kind"] == "delta")
    assert delta["artifact_depends"]["rootfs-image.checksum"] == old
    assert delta["updates"][0]["type_info"]["type"] == "pyupdate-delta"
    # the same name and depends again: Mender's 409 rule holds for deltas too
    again = tmp_path / "again"
    again.mkdir()
    a, b = image(again, "r1"), image(again, "r2", seed=1)
    assert upload(client, admin, delta_shaped(again, "r2", a, b)).status_code == 409
