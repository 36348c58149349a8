"""Bodies are capped before they are read (api/body_limit.py), and deep JSON is a 400."""

from __future__ import annotations

import asyncio
import json

import pytest
from server_helpers import accept, make_device, sign

from pyupdate_server.api.body_limit import BodyLimitMiddleware
from pyupdate_server.app import body_limit
from pyupdate_server.limits import MAX_AUTH_BODY

AUTH = "/api/devices/v1/authentication/auth_requests"
INVENTORY = "/api/devices/v1/inventory/device/attributes"


def _run(app, headers: list[tuple[bytes, bytes]], chunks: list[bytes]):  # type: ignore[no-untyped-def]
    """Drive one request through the middleware; return (status, chunks read)."""
    sent: list[dict] = []
    read = 0

    async def receive():  # type: ignore[no-untyped-def]
        nonlocal read
        read += 1
        more = read < len(chunks)
        return {"type": "http.request", "body": chunks[read - 1], "more_body": more}

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": AUTH, "headers": headers}
    asyncio.run(BodyLimitMiddleware(app, body_limit)(scope, receive, send))
    return sent[0]["status"], read, json.loads(sent[1]["body"])


async def _reading_app(scope, receive, send):  # type: ignore[no-untyped-def]
    from starlette.requests import Request
    from starlette.responses import Response

    await Request(scope, receive).body()
    await Response("read it all")(scope, receive, send)


def test_content_length_over_the_cap_is_413_before_a_byte_is_read():
    length = str(300 * 1024 * 1024).encode()
    status, read, body = _run(_reading_app, [(b"content-length", length)], [b"x"])
    assert (status, read) == (413, 0)
    assert body["error"] == f"request body over {MAX_AUTH_BODY} bytes"


def test_streamed_body_stops_being_read_at_the_cap():
    from starlette.exceptions import HTTPException

    chunks = [b"x" * 16384] * 1000  # 16 MiB, chunked: no Content-Length
    with pytest.raises(HTTPException) as caught:
        _run(_reading_app, [], chunks)
    assert caught.value.status_code == 413


def test_chunked_oversized_auth_request_is_413_with_one_line(client):
    def body():  # type: ignore[no-untyped-def]
        for _ in range(200):
            yield b"x" * 65536

    r = client.post(AUTH, content=body())
    assert r.status_code == 413
    assert r.json() == {"error": f"request body over {MAX_AUTH_BODY} bytes"}


def test_oversized_json_to_a_management_route_is_413_without_login(client):
    r = client.post("/api/management/v1/deployments/deployments", content=b"[" * 300_000)
    assert r.status_code == 413


@pytest.mark.parametrize("depth", [1_000, 30_000])
def test_deep_json_auth_body_is_400(client, depth):
    body = b"[" * depth + b"]" * depth
    r = client.post(AUTH, content=body, headers={"X-MEN-Signature": "c2ln"})
    assert r.status_code == 400, r.text
    assert "\n" not in r.json()["error"]


def test_deep_json_in_identity_data_is_400(client):
    device = make_device(client, "deep")
    body = json.dumps(
        {"id_data": "[" * 5_000 + "]" * 5_000, "pubkey": "x", "tenant_token": ""}
    ).encode()
    r = client.post(AUTH, content=body, headers={"X-MEN-Signature": sign(device.key, body)})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "id_data nests too deep"


@pytest.mark.parametrize(
    "path",
    [
        "/api/management/v1/deployments/deployments",
        "/api/management/v2/devauth/devices",
        "/api/management/v1/useradm/users",
    ],
)
def test_deep_json_to_management_routes_is_4xx_not_500(client, admin, path):
    for depth in (900, 30_000):
        r = client.post(path, content=b"[" * depth + b"]" * depth, headers=admin)
        assert 400 <= r.status_code < 500, (path, depth, r.status_code, r.text)


def test_deep_json_from_an_accepted_device_is_4xx_not_500(client, admin):
    device = make_device(client, "deep-inventory")
    accept(client, admin, device)
    for depth in (900, 30_000):
        value = "[" * depth + "]" * depth
        body = f'[{{"name": "a", "value": {value}}}]'.encode()
        r = client.put(INVENTORY, content=body, headers=device.headers)
        assert 400 <= r.status_code < 500, (depth, r.status_code, r.text)
