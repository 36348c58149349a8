"""Device deployments over HTTP: next (v1 GET/POST, v2), status, log, download with Range.

Tests marked s3 run with the local store and with an S3 store (conftest.py): there the
device downloads from the store's presigned URL, over the network."""

from __future__ import annotations

import os

import httpx
import pytest
from server_helpers import accept, fetch, make_device, upload

from pyupdate_testing.artifacts import write_test_artifact

DEV = "/api/devices/v1/deployments/device/deployments"
DEV2 = "/api/devices/v2/deployments/device/deployments"
MGMT = "/api/management/v1/deployments"
PROVIDES = {"artifact_name": "base", "device_type": "qemux86-64"}
# rclone 1.75's S3 server answers a satisfiable Range with 200 (and the right Content-Range
# and body) where AWS S3 and our own route answer 206: pinned, so a fixed rclone shows here
RANGE_STATUS = {"local": 206, "s3": 200}


def _setup(client, admin, tmp_path, payload=b"p" * 8192):
    device = make_device(client, "d1")
    device_id = accept(client, admin, device)
    path = write_test_artifact(tmp_path / "r1.mender", "release-1", payload=payload)
    assert upload(client, admin, path).status_code == 201
    r = client.post(
        f"{MGMT}/deployments",
        json={"name": "rollout", "artifact_name": "release-1", "devices": [device_id]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return device, device_id, r.headers["location"].rsplit("/", 1)[1], path


def test_nothing_due_is_204(client, admin):
    device = make_device(client, "idle")
    accept(client, admin, device)
    assert client.post(f"{DEV}/next", json=PROVIDES, headers=device.headers).status_code == 204
    r = client.get(f"{DEV}/next", params=PROVIDES, headers=device.headers)
    assert r.status_code == 204
    r = client.post(f"{DEV2}/next", json={"device_provides": PROVIDES}, headers=device.headers)
    assert r.status_code == 204


@pytest.mark.s3
def test_full_cycle_with_mender_field_names(client, admin, tmp_path, store):
    device, device_id, dep_id, path = _setup(client, admin, tmp_path)
    r = client.post(f"{DEV}/next", json=PROVIDES, headers=device.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == dep_id
    assert body["artifact"]["artifact_name"] == "release-1"
    assert body["artifact"]["device_types_compatible"] == ["qemux86-64"]
    uri = body["artifact"]["source"]["uri"]
    assert body["artifact"]["source"]["expire"].endswith("Z")
    # the download needs no Authorization header, and resumes with Range
    full = fetch(client, uri)
    assert full.status_code == 200
    assert int(full.headers["content-length"]) == path.stat().st_size
    part = fetch(client, uri, headers={"Range": "bytes=1000-"})
    assert part.status_code == RANGE_STATUS[store]
    size = path.stat().st_size
    assert part.headers["content-range"] == f"bytes 1000-{size - 1}/{size}"
    assert part.content == path.read_bytes()[1000:]
    for status in ("downloading", "installing", "rebooting", "success"):
        r = client.put(f"{DEV}/{dep_id}/status", json={"status": status}, headers=device.headers)
        assert r.status_code == 204, r.text
    shown = client.get(f"{MGMT}/deployments/{dep_id}", headers=admin).json()
    assert shown["status"] == "finished"
    assert shown["statistics"]["success"] == 1
    devices = client.get(f"{MGMT}/deployments/{dep_id}/devices", headers=admin).json()
    assert [(d["id"], d["status"]) for d in devices] == [(device_id, "success")]


def test_v2_and_get_v1_hand_out_the_same_deployment(client, admin, tmp_path):
    device, _, dep_id, _ = _setup(client, admin, tmp_path)
    v2 = client.post(
        f"{DEV2}/next",
        json={"device_provides": PROVIDES, "update_control_map": True},
        headers=device.headers,
    )
    assert v2.json()["id"] == dep_id
    assert client.get(f"{DEV}/next", params=PROVIDES, headers=device.headers).json()["id"] == dep_id


def test_aborted_deployment_answers_409_to_status(client, admin, tmp_path):
    device, _, dep_id, _ = _setup(client, admin, tmp_path)
    client.post(f"{DEV}/next", json=PROVIDES, headers=device.headers)
    client.put(f"{DEV}/{dep_id}/status", json={"status": "downloading"}, headers=device.headers)
    r = client.put(f"{MGMT}/deployments/{dep_id}/status", json={"status": "aborted"}, headers=admin)
    assert r.status_code == 204
    r = client.put(f"{DEV}/{dep_id}/status", json={"status": "installing"}, headers=device.headers)
    assert r.status_code == 409
    assert "aborted" in r.json()["error"]


def test_failure_log_is_stored_and_shown(client, admin, tmp_path):
    device, device_id, dep_id, _ = _setup(client, admin, tmp_path)
    client.post(f"{DEV}/next", json=PROVIDES, headers=device.headers)
    client.put(f"{DEV}/{dep_id}/status", json={"status": "failure"}, headers=device.headers)
    messages = [
        {"level": "error", "message": "ArtifactInstall failed", "timestamp": "2026-01-01T00:00:00Z"}
    ]
    r = client.put(f"{DEV}/{dep_id}/log", json={"messages": messages}, headers=device.headers)
    assert r.status_code == 204
    log = client.get(f"{MGMT}/deployments/{dep_id}/devices/{device_id}/log", headers=admin)
    assert log.status_code == 200
    assert "ArtifactInstall failed" in log.text


def test_device_sees_only_its_own_deployments(client, admin, tmp_path):
    _, _, dep_id, _ = _setup(client, admin, tmp_path)
    other = make_device(client, "other")
    accept(client, admin, other)
    assert client.post(f"{DEV}/next", json=PROVIDES, headers=other.headers).status_code == 204
    r = client.put(f"{DEV}/{dep_id}/status", json={"status": "success"}, headers=other.headers)
    assert r.status_code == 404
    r = client.put(f"{DEV}/{dep_id}/log", json={"messages": []}, headers=other.headers)
    assert r.status_code == 404


def test_tampered_or_expired_download_link_is_403(client, admin, tmp_path):
    device, _, _, _ = _setup(client, admin, tmp_path)
    uri = client.post(f"{DEV}/next", json=PROVIDES, headers=device.headers).json()["artifact"][
        "source"
    ]["uri"]
    r = client.get(uri.replace("x-men-signature=", "x-men-signature=0"))
    assert r.status_code == 403
    base, query = uri.split("?")
    parts = dict(p.split("=") for p in query.split("&"))
    r = client.get(base, params={"x-men-expire": "1", "x-men-signature": parts["x-men-signature"]})
    assert r.status_code == 403


@pytest.mark.s3
def test_large_download_is_streamed(client, admin, tmp_path, store):
    # 10 MiB of payload: over one 8 MiB multipart part on the way into an S3 store
    size = (10 if store == "s3" else 3) * 1024 * 1024
    device, _, _, path = _setup(client, admin, tmp_path, payload=os.urandom(size))
    uri = client.post(f"{DEV}/next", json=PROVIDES, headers=device.headers).json()["artifact"][
        "source"
    ]["uri"]
    if store == "s3":
        with httpx.stream("GET", uri, timeout=30) as response:
            chunks = list(response.iter_raw())
    else:
        with client.stream("GET", uri) as response:
            chunks = list(response.iter_raw())
    assert len(chunks) > 1
    assert b"".join(chunks) == path.read_bytes()


def test_next_without_device_type_is_400(client, admin):
    device = make_device(client, "nodt")
    accept(client, admin, device)
    r = client.post(f"{DEV}/next", json={"artifact_name": "x"}, headers=device.headers)
    assert r.status_code == 400
    assert r.json()["error"] == "device_type is required"


def test_anonymous_device_calls_are_401(client):
    assert client.post(f"{DEV}/next", json=PROVIDES).status_code == 401
    assert client.put(f"{DEV}/x/status", json={"status": "success"}).status_code == 401
