"""Unauthenticated devices cannot fill the database: identity caps, a per-source rate of new
pending devices, a ceiling on pending devices, and a bounded number of keys per device."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from server_helpers import FakeDevice, device_key, make_device, sign

from pyupdate_server.app import create_app
from pyupdate_server.limits import MAX_AUTH_SETS, MAX_IDENTITY, MAX_IDENTITY_ATTRS

AUTH = "/api/devices/v1/authentication/auth_requests"
DEVICES = "/api/management/v2/devauth/devices"


def test_new_pending_devices_per_source_are_rate_limited(settings):
    with TestClient(create_app(settings.replace(pending_per_source=3))) as client:
        codes = [make_device(client, f"dev-{i}").authenticate().status_code for i in range(5)]
        # a device already known is not new: it still gets its 401 "not accepted (yet)"
        again = make_device(client, "dev-0").authenticate()
    assert codes == [401, 401, 401, 429, 429]
    assert again.status_code == 401


def test_pending_devices_have_a_ceiling(settings):
    with TestClient(create_app(settings.replace(max_pending_devices=2))) as client:
        codes = [make_device(client, f"dev-{i}").authenticate().status_code for i in range(3)]
        r = make_device(client, "dev-late").authenticate()
    assert codes == [401, 401, 429]
    assert "pending already" in r.json()["error"]
    assert r.headers["Retry-After"]


def test_identity_over_the_size_cap_is_400(client):
    device = FakeDevice(client, {"mac": "x" * (MAX_IDENTITY + 1)}, device_key())
    r = device.authenticate()
    assert r.status_code == 400
    assert r.json()["error"] == f"id_data over {MAX_IDENTITY} bytes"


def test_identity_with_too_many_attributes_is_400(client):
    identity = {f"a{i}": "v" for i in range(MAX_IDENTITY_ATTRS + 1)}
    assert FakeDevice(client, identity, device_key()).authenticate().status_code == 400


def test_nested_identity_is_400(client):
    device = FakeDevice(client, {"mac": {"nested": "value"}}, device_key())  # type: ignore[dict-item]
    assert device.authenticate().status_code == 400


def test_a_device_has_a_bounded_number_of_keys(client, admin):
    from cryptography.hazmat.primitives.asymmetric import ec
    from server_helpers import pubkey_pem

    codes = []
    for _ in range(MAX_AUTH_SETS + 1):
        key = ec.generate_private_key(ec.SECP256R1())
        body = json.dumps({"id_data": '{"mac":"many-keys"}', "pubkey": pubkey_pem(key)}).encode()
        r = client.post(AUTH, content=body, headers={"X-MEN-Signature": sign(key, body)})
        codes.append(r.status_code)
    assert codes == [401] * MAX_AUTH_SETS + [409]


def test_device_list_is_paged_on_the_server(client, admin):
    for i in range(7):
        assert make_device(client, f"paged-{i}").authenticate().status_code == 401
    r = client.get(DEVICES, params={"per_page": 3, "page": 3}, headers=admin)
    assert r.status_code == 200
    assert len(r.json()) == 1
    assert r.headers["X-Total-Count"] == "7"
    assert client.get(DEVICES, params={"per_page": 501}, headers=admin).status_code == 422
