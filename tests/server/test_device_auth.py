"""Device authentication: auth sets, states, signatures, token revocation."""

from __future__ import annotations

import json

import pytest
from server_helpers import accept, make_device

from pyupdate_testing.device_keys import device_key, sign

AUTH = "/api/devices/v1/authentication/auth_requests"
DEVAUTH = "/api/management/v2/devauth/devices"


@pytest.mark.parametrize("kind", ["rsa", "ec", "ed25519"])
def test_new_device_is_pending_then_accepted_gets_jwt(client, admin, kind):
    device = make_device(client, f"dev-{kind}", kind)
    first = device.authenticate()
    assert first.status_code == 401
    assert "not accepted" in first.json()["error"]
    listed = client.get(DEVAUTH, headers=admin, params={"status": "pending"}).json()
    assert [d["identity_data"] for d in listed] == [device.identity]
    accept(client, admin, device)
    assert device.token and device.token.count(".") == 2
    r = client.put(
        "/api/devices/v1/inventory/device/attributes",
        json=[{"name": "device_type", "value": "qemux86-64"}],
        headers=device.headers,
    )
    assert r.status_code == 200


def test_jwt_is_plain_text_without_newline(client, admin):
    device = make_device(client, "plain")
    accept(client, admin, device)
    r = device.authenticate()
    assert r.headers["content-type"].startswith("application/jwt")
    assert not r.text.endswith("\n")


def test_signature_over_other_bytes_is_refused(client):
    device = make_device(client, "tamper")
    body = device.auth_body()
    signature = sign(device.key, body)
    altered = body.replace(b'"tenant_token": ""', b'"tenant_token": "x"')
    r = client.post(AUTH, content=altered, headers={"X-MEN-Signature": signature})
    assert r.status_code == 401
    assert "signature does not verify" in r.json()["error"]
    assert client.app.state.server.db.read  # nothing stored:
    with client.app.state.server.db.read() as session:
        from sqlalchemy import func, select

        from pyupdate_server.db.models import Device

        assert session.scalar(select(func.count()).select_from(Device)) == 0


def test_signature_with_another_key_is_refused(client):
    device = make_device(client, "wrongkey")
    body = device.auth_body()
    r = client.post(AUTH, content=body, headers={"X-MEN-Signature": sign(device_key("ec"), body)})
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"not json", {"X-MEN-Signature": "AAAA"}, 400),
        (b'{"id_data": "{}", "pubkey": "x"}', {"X-MEN-Signature": "AAAA"}, 400),
        (b'{"pubkey": "x"}', {"X-MEN-Signature": "AAAA"}, 400),
        (b"[1, 2]", {}, 400),
    ],
)
def test_garbage_auth_requests_get_4xx_with_a_message(client, body, headers, status):
    r = client.post(AUTH, content=body, headers=headers)
    assert r.status_code == status
    assert r.json()["error"]


def test_missing_signature_header_is_refused(client):
    device = make_device(client, "nosig")
    r = client.post(AUTH, content=device.auth_body())
    assert r.status_code == 401
    assert "X-MEN-Signature" in r.json()["error"]


def test_rejecting_revokes_the_token_and_replay_gets_401(client, admin):
    device = make_device(client, "rej")
    device_id = accept(client, admin, device)
    auth_id = client.get(f"{DEVAUTH}/{device_id}", headers=admin).json()["auth_sets"][0]["id"]
    r = client.put(
        f"{DEVAUTH}/{device_id}/auth/{auth_id}/status",
        json={"status": "rejected"},
        headers=admin,
    )
    assert r.status_code == 204
    next_url = "/api/devices/v1/deployments/device/deployments/next"
    r = client.get(
        next_url, params={"artifact_name": "a", "device_type": "t"}, headers=device.headers
    )
    assert r.status_code == 401
    # the captured auth request replayed after rejection gets nothing
    assert device.authenticate().status_code == 401


def test_decommission_revokes_and_keeps_refusing(client, admin):
    device = make_device(client, "decom")
    device_id = accept(client, admin, device)
    assert client.delete(f"{DEVAUTH}/{device_id}", headers=admin).status_code == 204
    assert device.authenticate().status_code == 401
    r = client.put("/api/devices/v1/inventory/device/attributes", json=[], headers=device.headers)
    assert r.status_code == 401
    assert client.get(f"{DEVAUTH}/{device_id}", headers=admin).json()["status"] == (
        "decommissioned"
    )


def test_preauthorized_device_is_accepted_on_first_request(client, admin):
    device = make_device(client, "pre", "ec")
    from pyupdate_testing.device_keys import pubkey_pem

    r = client.post(
        DEVAUTH,
        json={"identity_data": device.identity, "pubkey": pubkey_pem(device.key)},
        headers=admin,
    )
    assert r.status_code == 201
    assert r.headers["location"].startswith(DEVAUTH)
    assert device.authenticate().status_code == 200
    again = client.post(
        DEVAUTH,
        json={"identity_data": device.identity, "pubkey": pubkey_pem(device.key)},
        headers=admin,
    )
    assert again.status_code == 409


def test_new_key_for_accepted_device_is_a_pending_auth_set(client, admin):
    device = make_device(client, "rekey")
    device_id = accept(client, admin, device)
    device.key = device_key("ed25519")
    assert device.authenticate().status_code == 401
    sets = client.get(f"{DEVAUTH}/{device_id}", headers=admin).json()["auth_sets"]
    assert sorted(s["status"] for s in sets) == ["accepted", "pending"]
    # accepting the new key rejects the old one (one key at a time)
    new = next(s for s in sets if s["status"] == "pending")
    client.put(
        f"{DEVAUTH}/{device_id}/auth/{new['id']}/status",
        json={"status": "accepted"},
        headers=admin,
    )
    sets = client.get(f"{DEVAUTH}/{device_id}", headers=admin).json()["auth_sets"]
    assert sorted(s["status"] for s in sets) == ["accepted", "rejected"]


def test_id_data_as_object_and_string_name_the_same_device(client, admin):
    device = make_device(client, "same")
    device.authenticate()
    body = json.dumps(
        {"id_data": device.identity, "pubkey": json.loads(device.auth_body())["pubkey"]}
    ).encode()
    client.post(AUTH, content=body, headers={"X-MEN-Signature": sign(device.key, body)})
    assert client.get(f"{DEVAUTH}/count", headers=admin).json() == {"count": 1}
