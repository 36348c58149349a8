"""Every management route refuses anonymous callers and device tokens; nothing is stored."""

from __future__ import annotations

import re

import pytest
from server_helpers import accept, make_device
from sqlalchemy import func, select

from pyupdate_server.db.models import Artifact, Deployment, User


def _management_calls(app) -> list[tuple[str, str]]:
    calls = []
    for template, methods in app.openapi()["paths"].items():
        if template.startswith("/api/management"):
            path = re.sub(r"\{[^}]+\}", "x", template)
            calls += [(method.upper(), path) for method in sorted(methods)]
    return calls


def _counts(client) -> tuple[int, int, int]:
    with client.app.state.server.db.read() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(model))
            for model in (User, Artifact, Deployment)
        )


def test_there_are_many_management_routes(client):
    assert len(_management_calls(client.app)) > 30


@pytest.mark.parametrize("who", ["anonymous", "device", "garbage", "basic"])
def test_management_routes_refuse_non_users(client, admin, who):
    device = make_device(client, "intruder")
    accept(client, admin, device)
    headers = {
        "anonymous": {},
        "device": device.headers,
        "garbage": {"Authorization": "Bearer not.a.jwt"},
        "basic": {"Authorization": "Basic YWRtaW46YWRtaW4="},
    }[who]
    before = _counts(client)
    for method, path in _management_calls(client.app):
        r = client.request(method, path, headers=headers, json={"name": "x", "status": "aborted"})
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.json()["error"], (method, path)
    assert _counts(client) == before


def test_device_routes_refuse_user_tokens_and_anonymous(client, admin):
    for method, path in [
        ("PUT", "/api/devices/v1/inventory/device/attributes"),
        ("PATCH", "/api/devices/v1/inventory/device/attributes"),
        ("POST", "/api/devices/v1/deployments/device/deployments/next"),
        ("POST", "/api/devices/v2/deployments/device/deployments/next"),
        ("PUT", "/api/devices/v1/deployments/device/deployments/x/status"),
        ("PUT", "/api/devices/v1/deployments/device/deployments/x/log"),
    ]:
        for headers in ({}, admin):
            r = client.request(method, path, headers=headers, json=[])
            assert r.status_code == 401, (method, path, headers)


def test_oversized_auth_request_is_413(client):
    body = b'{"id_data": "' + b"x" * 70000 + b'", "pubkey": "k"}'
    r = client.post("/api/devices/v1/authentication/auth_requests", content=body)
    assert r.status_code == 413
    assert "over" in r.json()["error"]
