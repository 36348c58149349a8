"""`pyupdate-server serve --tls-cert C --tls-key K`: the real server process on 127.0.0.1
speaks TLS with that certificate (a private CA's, SAN 127.0.0.1 and localhost).

A client that trusts the CA gets through, by IP and by name; a client that
does not (the system's trust store, or another CA) fails verification and
nothing it sent reaches the app.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pyupdate_testing.device_keys import device_key, pubkey_pem, sign
from pyupdate_testing.pki import Pki, make_pki
from pyupdate_testing.server import Server, metric, tls_server

AUTH = "/api/devices/v1/authentication/auth_requests"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pki, Server]]:
    root = tmp_path_factory.mktemp("tls")
    pki = make_pki(root / "pki")
    with tls_server(root, pki) as server:
        yield pki, server


def auth_request(url: str, identity: dict[str, str], key: object, verify: object) -> httpx.Response:
    body = json.dumps(
        {"id_data": json.dumps(identity), "tenant_token": "", "pubkey": pubkey_pem(key)}
    ).encode()
    headers = {"Content-Type": "application/json", "X-MEN-Signature": sign(key, body)}
    return httpx.post(f"{url}{AUTH}", content=body, headers=headers, verify=verify, timeout=30)  # type: ignore[arg-type]


def test_client_trusting_the_ca_gets_health_and_device_auth_over_tls(
    tls: tuple[Pki, Server],
) -> None:
    pki, server = tls
    context = pki.client_context()
    for base in (server.url, f"https://localhost:{server.port}"):
        r = httpx.get(f"{base}/health", verify=context, timeout=30)
        assert r.status_code == 200, r.text
    key = device_key("ec")
    identity = {"mac": "02:00:00:00:05:01"}
    device_id = server.preauthorize(identity, pubkey_pem(key))
    r = auth_request(server.url, identity, key, context)
    assert r.status_code == 200, r.text
    token = r.text
    assert token.count(".") == 2
    # the token works on the device API over the same TLS listener
    r = httpx.put(
        f"{server.url}/api/devices/v1/inventory/device/attributes",
        json=[{"name": "tls_check", "value": "ok"}],
        headers={"Authorization": f"Bearer {token}"},
        verify=context,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert server.inventory(device_id)["tls_check"] == "ok"
    # the startup line names the https URL (Settings.base_url follows tls_cert)
    assert f"listening on https://127.0.0.1:{server.port}" in server.log.read_text()


def test_client_without_the_ca_fails_certificate_verification(
    tls: tuple[Pki, Server], tmp_path: Path
) -> None:
    _, server = tls
    other_ca = make_pki(tmp_path / "other").client_context()
    before = metric(server, "pyupdate_device_auth_requests")
    key = device_key("ec")
    identity = {"mac": "02:00:00:00:05:02"}
    for verify in (True, other_ca):  # the system's trust store; another private CA
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{server.url}/health", verify=verify, timeout=30)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            auth_request(server.url, identity, key, verify)
    # the standard library's client (what the agent uses) refuses the same way
    with pytest.raises(urllib.error.URLError) as caught:
        urllib.request.urlopen(f"{server.url}/health", timeout=30)
    assert isinstance(caught.value.reason, ssl.SSLCertVerificationError)
    # no auth request reached the app, and no device was created
    assert metric(server, "pyupdate_device_auth_requests") == before
    listed = server.api.get("/api/management/v2/devauth/devices").json()
    assert identity not in [d["identity_data"] for d in listed]
