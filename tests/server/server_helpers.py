"""Helpers for the server tests: devices that speak like the Mender 3.4 client."""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx
from fastapi.testclient import TestClient

from pyupdate_testing.device_keys import device_key, pubkey_pem, sign

ADMIN = ("admin@example.com", "correct horse battery")


@dataclass
class FakeDevice:
    """A device as the Mender 3.4 client speaks: same body bytes, same signatures."""

    client: TestClient
    identity: dict[str, str]
    key: object
    token: str | None = None

    def auth_body(self) -> bytes:
        body = {
            "id_data": json.dumps(self.identity, sort_keys=True),
            "tenant_token": "",
            "pubkey": pubkey_pem(self.key),
        }
        return json.dumps(body).encode() + b"\n"

    def authenticate(self):  # type: ignore[no-untyped-def]
        body = self.auth_body()
        response = self.client.post(
            "/api/devices/v1/authentication/auth_requests",
            content=body,
            headers={"Content-Type": "application/json", "X-MEN-Signature": sign(self.key, body)},
        )
        if response.status_code == 200:
            self.token = response.text
        return response

    @property
    def headers(self) -> dict[str, str]:
        assert self.token, "device not authenticated"
        return {"Authorization": f"Bearer {self.token}"}


def make_device(client: TestClient, name: str, kind: str = "rsa") -> FakeDevice:
    return FakeDevice(client, {"mac": name}, device_key(kind))


def accept(client: TestClient, admin: dict[str, str], device: FakeDevice) -> str:
    """First auth (401, pending), accept via the management API, then authenticate."""
    assert device.authenticate().status_code == 401
    devices = client.get(
        "/api/management/v2/devauth/devices", headers=admin, params={"per_page": 500}
    ).json()
    found = next(d for d in devices if d["identity_data"] == device.identity)
    auth_id = found["auth_sets"][-1]["id"]
    r = client.put(
        f"/api/management/v2/devauth/devices/{found['id']}/auth/{auth_id}/status",
        json={"status": "accepted"},
        headers=admin,
    )
    assert r.status_code == 204, r.text
    assert device.authenticate().status_code == 200
    return found["id"]  # type: ignore[no-any-return]


def upload(client, admin, path, description: str = ""):  # type: ignore[no-untyped-def]
    with open(path, "rb") as fh:
        return client.post(
            "/api/management/v1/deployments/artifacts",
            files={"artifact": (path.name, fh, "application/octet-stream")},
            data={"description": description},
            headers=admin,
        )


def fetch(client: TestClient, uri: str, method: str = "GET", **kwargs: object) -> httpx.Response:
    """A download link as a device follows it: our own routes in-process, an object
    store's presigned URL over the network."""
    if uri.startswith(str(client.base_url)):
        return client.request(method, uri, **kwargs)  # type: ignore[arg-type]
    return httpx.request(method, uri, timeout=30, **kwargs)  # type: ignore[arg-type]


def stored_blobs(client: TestClient) -> list[str]:
    """The artifact store's contents: files, or objects and open multipart uploads."""
    store = client.app.state.server.store  # type: ignore[attr-defined]
    if store.name == "local":
        return sorted(p.name for p in store.root.iterdir())
    bucket, prefix = store.location.bucket, store.location.key("")
    listed = store.client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    keys = [o["Key"] for o in listed.get("Contents", [])]
    try:
        uploads = store.client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    except store.client.exceptions.NoSuchUpload:  # rclone's answer to "none yet"
        uploads = {}
    return sorted(keys + [f"open upload {u['Key']}" for u in uploads.get("Uploads", [])])
