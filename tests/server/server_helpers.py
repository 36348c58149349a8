"""Helpers for the server tests: devices that speak like the Mender 3.4 client."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import cache

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from fastapi.testclient import TestClient

ADMIN = ("admin@example.com", "correct horse battery")


@cache
def device_key(kind: str = "rsa", n: int = 0):  # type: ignore[no-untyped-def]
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def sign(key, body: bytes) -> str:  # type: ignore[no-untyped-def]
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(body, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        sig = key.sign(body, ec.ECDSA(hashes.SHA256()))
    else:
        sig = key.sign(body)
    return base64.b64encode(sig).decode()


def pubkey_pem(key) -> str:  # type: ignore[no-untyped-def]
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


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


def write_test_artifact(
    out,  # type: ignore[no-untyped-def]
    name: str,
    device_types: tuple[str, ...] = ("qemux86-64",),
    payload: bytes = b"payload\n" * 1024,
    module: str = "single-file",
    depends: dict | None = None,  # type: ignore[type-arg]
    depends_names: tuple[str, ...] = (),
    signer=None,  # type: ignore[no-untyped-def]
):
    """A module-image artifact written with the shared writer (pyupdate_artifact)."""
    from pyupdate_artifact import compression
    from pyupdate_artifact.writer import ArtifactSpec, PayloadSpec, write_artifact

    src = out.parent / f"{out.name}.payload"
    src.write_bytes(payload)
    spec = ArtifactSpec(
        name=name,
        device_types=device_types,
        payload=PayloadSpec(
            type=module,
            files=(src,),
            provides={f"rootfs-image.{module}.version": name},
            depends=depends or {},
            clears_provides=(f"rootfs-image.{module}.*",),
        ),
        compression=compression.by_id("gzip"),
        depends_names=depends_names,
    )
    write_artifact(out, spec, signer=signer)
    return out


def upload(client, admin, path, description: str = ""):  # type: ignore[no-untyped-def]
    with open(path, "rb") as fh:
        return client.post(
            "/api/management/v1/deployments/artifacts",
            files={"artifact": (path.name, fh, "application/octet-stream")},
            data={"description": description},
            headers=admin,
        )
