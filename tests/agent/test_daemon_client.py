"""daemon/client.py against a LocalHTTP server on 127.0.0.1: Mender's fallbacks
(PUT->PATCH, v2->v1 POST->v1 GET), status codes as typed errors, capped answers,
and ResumableDownload's Range rules."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator

import pytest

from pyupdate_agent.daemon.client import (
    MAX_BODY,
    DeploymentAborted,
    DeviceClient,
    ServerError,
    Unauthorized,
    token_expiry,
)
from pyupdate_testing.fake_device_api import LocalHTTP, Seen, fake_token
from pyupdate_testing.server import free_port

API = "/api/devices"
V2_NEXT = f"{API}/v2/deployments/device/deployments/next"
V1_NEXT = f"{API}/v1/deployments/device/deployments/next"
INVENTORY = f"{API}/v1/inventory/device/attributes"
PROVIDES = {"artifact_name": "release 1", "device_type": "test-device", "rootfs-image.version": "1"}
DEPLOYMENT = {
    "id": "dep-7",
    "artifact": {
        "artifact_name": "release-2",
        "source": {"uri": "http://127.0.0.1:1/x", "expire": "2099-01-01T00:00:00Z"},
        "device_types_compatible": ["test-device", "other"],
    },
}


@pytest.fixture
def serve() -> Iterator[Callable[[Callable], tuple[LocalHTTP, DeviceClient]]]:
    servers: list[LocalHTTP] = []

    def start(handle, timeout: float = 5.0) -> tuple[LocalHTTP, DeviceClient]:
        server = LocalHTTP(handle)
        servers.append(server)
        client = DeviceClient(server.url, timeout=timeout)
        client.token = fake_token()
        return server, client

    yield start
    for server in servers:
        server.close()


def _paths(server: LocalHTTP) -> list[str]:
    return [f"{s.method} {s.path}" for s in server.seen]


# -- inventory -------------------------------------------------------------------------


def test_inventory_is_put_once_when_the_server_takes_put(serve) -> None:
    server, client = serve(lambda h, seen: h.reply(200))
    client.put_inventory([{"name": "hostname", "value": "dev"}])
    assert _paths(server) == [f"PUT {INVENTORY}"]
    seen = server.seen[0]
    assert json.loads(seen.body) == [{"name": "hostname", "value": "dev"}]
    assert seen.headers["authorization"] == f"Bearer {client.token}"
    assert seen.headers["content-type"] == "application/json"


def test_inventory_falls_back_to_patch_on_405(serve) -> None:
    server, client = serve(lambda h, seen: h.reply(405 if seen.method == "PUT" else 200))
    client.put_inventory([{"name": "a", "value": ["1", "2"]}])
    assert _paths(server) == [f"PUT {INVENTORY}", f"PATCH {INVENTORY}"]
    assert server.seen[0].body == server.seen[1].body


def test_inventory_refused_by_patch_too_is_an_error(serve) -> None:
    _, client = serve(lambda h, seen: h.reply(405 if seen.method == "PUT" else 400))
    with pytest.raises(ServerError, match=f"^PATCH {INVENTORY.removeprefix(API)}: unexpected 400"):
        client.put_inventory([])


# -- the deployment check --------------------------------------------------------------


def test_deployment_check_falls_back_v2_post_v1_post_v1_get(serve) -> None:
    server, client = serve(lambda h, seen: h.reply(404 if seen.method == "POST" else 204))
    assert client.next_deployment(PROVIDES) is None
    assert [s.method for s in server.seen] == ["POST", "POST", "GET"]
    v2, v1, get = server.seen
    assert v2.path == V2_NEXT and json.loads(v2.body) == {"device_provides": PROVIDES}
    assert v1.path == V1_NEXT and json.loads(v1.body) == PROVIDES
    assert get.path == f"{V1_NEXT}?artifact_name=release+1&device_type=test-device"


def test_deployment_check_stops_at_the_first_form_the_server_knows(serve) -> None:
    server, client = serve(lambda h, seen: h.reply_json(200, DEPLOYMENT))
    found = client.next_deployment(PROVIDES)
    assert _paths(server) == [f"POST {V2_NEXT}"]
    assert found is not None
    assert (found.id, found.artifact_name, found.uri) == (
        "dep-7",
        "release-2",
        "http://127.0.0.1:1/x",
    )
    assert found.device_types == ("test-device", "other")
    assert type(found).from_dict(found.as_dict()) == found


@pytest.mark.parametrize("full", [{"uri": "http://127.0.0.1:1/full", "expire": "x"}, None])
def test_a_delta_deployment_carries_the_full_artifacts_link(serve, full) -> None:
    """`artifact.pyupdate_full_source` (docs/device-api.md, "Delta artifacts"): kept in the
    record, so a restarted download can still fall back; absent or null: None."""
    doc = json.loads(json.dumps(DEPLOYMENT))
    doc["artifact"]["pyupdate_full_source"] = full
    _, client = serve(lambda h, seen: h.reply_json(200, doc))
    found = client.next_deployment(PROVIDES)
    assert found is not None
    assert found.full_source == (full and full["uri"])
    assert type(found).from_dict(found.as_dict()) == found


@pytest.mark.parametrize("full", [7, {"expire": "x"}, {"uri": ""}, {"uri": 5}])
def test_a_malformed_full_source_is_a_malformed_deployment(serve, full) -> None:
    doc = json.loads(json.dumps(DEPLOYMENT))
    doc["artifact"]["pyupdate_full_source"] = full
    _, client = serve(lambda h, seen: h.reply_json(200, doc))
    with pytest.raises(ServerError, match=r"^deployment check: malformed answer from the server$"):
        client.next_deployment(PROVIDES)


def test_v1_post_answering_204_means_no_deployment(serve) -> None:
    server, client = serve(lambda h, seen: h.reply(404 if seen.path == V2_NEXT else 204))
    assert client.next_deployment(PROVIDES) is None
    assert len(server.seen) == 2


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b"null",
        b'{"id": "x"}',
        b'{"id": "x", "artifact": 7}',
        b'{"id": "x", "artifact": {"artifact_name": "a", "source": {}}}',
        b'{"id": "x", "artifact": {"artifact_name": "a", "source": {"uri": "u"},'
        b' "device_types_compatible": 5}}',
        b'{"id": "x", "artifact": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # issue 16
    ],
)
def test_a_malformed_deployment_is_one_line_error(serve, body: bytes) -> None:
    _, client = serve(lambda h, seen: h.reply(200, body))
    with pytest.raises(ServerError, match=r"^deployment check: malformed answer from the server$"):
        client.next_deployment(PROVIDES)


def test_a_deployment_for_no_device_type_is_refused(serve) -> None:
    doc = json.loads(json.dumps(DEPLOYMENT))
    doc["artifact"]["device_types_compatible"] = []
    _, client = serve(lambda h, seen: h.reply_json(200, doc))
    with pytest.raises(ServerError, match="lists no compatible device types"):
        client.next_deployment(PROVIDES)


@pytest.mark.parametrize("status", [500, 502, 400])
def test_unexpected_status_is_a_server_error_with_the_servers_message(serve, status: int) -> None:
    _, client = serve(lambda h, seen: h.reply(status, b'{"error":"db down"}'))
    with pytest.raises(ServerError, match=rf"unexpected {status} \(db down\)$"):
        client.next_deployment(PROVIDES)


def test_401_is_unauthorized(serve) -> None:
    _, client = serve(lambda h, seen: h.reply(401, b'{"error":"token expired"}'))
    with pytest.raises(Unauthorized, match=r"401 unauthorized \(token expired\)"):
        client.next_deployment(PROVIDES)


def test_an_answer_over_the_cap_is_refused(serve) -> None:
    _, client = serve(lambda h, seen: h.reply(200, b" " * (MAX_BODY + 1)))
    with pytest.raises(ServerError, match=f"response larger than {MAX_BODY} bytes"):
        client.next_deployment(PROVIDES)


def test_a_redirect_loop_on_the_api_is_an_error(serve) -> None:
    def hop(h, seen: Seen) -> None:
        n = int(seen.path.rsplit("=", 1)[1]) if "=" in seen.path else 0
        h.reply(307, headers={"Location": f"{V2_NEXT}?n={n + 1}", "Content-Length": "0"})

    server, client = serve(hop)
    with pytest.raises(ServerError, match=r"^POST .*: 30\d"):
        client.next_deployment(PROVIDES)
    assert len(server.seen) <= 11


def test_an_unreachable_server_is_a_server_error() -> None:
    client = DeviceClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(ServerError, match=r"^POST http://127\.0\.0\.1:\d+/api/devices/v2/"):
        client.next_deployment(PROVIDES)


# -- status, log, auth -----------------------------------------------------------------


def test_status_report_sends_status_and_substate(serve) -> None:
    server, client = serve(lambda h, seen: h.reply(204))
    client.report_status("dep-7", "installing", "writing slot B")
    client.report_status("dep-7", "success")
    assert [json.loads(s.body) for s in server.seen] == [
        {"status": "installing", "substate": "writing slot B"},
        {"status": "success"},
    ]
    assert {s.path for s in server.seen} == {
        f"{API}/v1/deployments/device/deployments/dep-7/status"
    }
    assert {s.method for s in server.seen} == {"PUT"}


def test_409_on_a_status_report_means_aborted(serve) -> None:
    _, client = serve(lambda h, seen: h.reply(409, b'{"error":"aborted"}'))
    with pytest.raises(DeploymentAborted, match=r"^deployment dep-7 was aborted on the server$"):
        client.report_status("dep-7", "downloading")


def test_the_log_is_put_as_messages(serve) -> None:
    server, client = serve(lambda h, seen: h.reply(204))
    messages = [{"level": "error", "message": "boom", "timestamp": "2026-01-01T00:00:00Z"}]
    client.upload_log("dep-7", messages)
    assert server.seen[0].path.endswith("/deployments/dep-7/log")
    assert json.loads(server.seen[0].body) == {"messages": messages}


class _Signer:
    def public_pem(self) -> str:
        return "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"

    def sign(self, body: bytes) -> str:
        return "sig:" + hashlib.sha256(body).hexdigest()


def test_authentication_signs_the_exact_body_and_keeps_the_token(serve) -> None:
    token = fake_token(600)
    server, client = serve(lambda h, seen: h.reply(200, token.encode()))
    client.token = None
    assert client.authenticate('{"mac":"02:00"}', _Signer(), "tenant") == token
    seen = server.seen[0]
    assert seen.path == f"{API}/v1/authentication/auth_requests"
    assert seen.headers["x-men-signature"] == _Signer().sign(seen.body)
    assert seen.headers["authorization"] == "Bearer tenant"
    assert json.loads(seen.body) == {
        "id_data": '{"mac":"02:00"}',
        "tenant_token": "tenant",
        "pubkey": _Signer().public_pem(),
    }
    assert client.token == token
    assert client.token_expires is not None and 590 < client.token_expires - time.time() <= 600


@pytest.mark.parametrize(("status", "error"), [(200, ServerError), (401, Unauthorized)])
def test_authentication_without_a_token_fails(serve, status: int, error: type) -> None:
    _, client = serve(lambda h, seen: h.reply(status, b"<html>welcome</html>"))
    with pytest.raises(error):
        client.authenticate("{}", _Signer())
    assert client.token != "<html>welcome</html>"


def test_token_expiry_is_none_for_an_opaque_token() -> None:
    assert token_expiry("opaque") is None
    assert token_expiry("a.!!!.c") is None
    assert token_expiry(fake_token(100)) is not None


# -- ResumableDownload -----------------------------------------------------------------

BLOB = os.urandom(300_000)


def _ranged(blob: bytes, cut: int | None, *, on_range=None):
    """First answer: Content-Length of all, but only `cut` bytes then a close.
    A Range request gets `on_range(h, start)` or an honest 206."""

    def handle(h, seen: Seen) -> None:
        rng = seen.headers.get("range")
        if rng is None:
            h.reply(200, blob[:cut], {"Content-Length": str(len(blob))})
            return
        start = int(rng.removeprefix("bytes=").rstrip("-"))
        if on_range is not None:
            on_range(h, start)
            return
        h.reply(206, blob[start:], {"Content-Range": f"bytes {start}-{len(blob) - 1}/{len(blob)}"})

    return handle


def _read_all(download) -> bytes:
    parts = []
    while chunk := download.read(65536):
        parts.append(chunk)
    return b"".join(parts)


def _open(server: LocalHTTP, client: DeviceClient, **kwargs):
    return client.open_download(f"{server.url}/download/a", backoff=0.01, **kwargs)


def test_a_dropped_download_resumes_from_the_last_byte_with_range(serve) -> None:
    server, client = serve(_ranged(BLOB, 100_000))
    resumed_at: list[int] = []
    download = _open(server, client, on_resume=resumed_at.append)
    assert download.size == len(BLOB)
    assert _read_all(download) == BLOB
    assert download.resumes == 1 and resumed_at == [100_000]
    assert [s.headers.get("range") for s in server.seen] == [None, "bytes=100000-"]


def test_a_zero_byte_read_is_not_taken_for_a_dropped_connection(serve) -> None:
    # the artifact reader reads 0 bytes of tar padding after a member of 512*n bytes;
    # taking that for EOF made every download through the QEMU guest fail at that byte
    server, client = serve(_ranged(BLOB, None))
    download = _open(server, client)
    assert download.read(1000) == BLOB[:1000]
    assert download.read(0) == b""
    assert download.read(1000) == BLOB[1000:2000]
    assert download.resumes == 0 and len(server.seen) == 1


def test_a_resume_answered_from_an_earlier_byte_drops_what_it_has(serve) -> None:
    def earlier(h, start: int) -> None:
        h.reply(206, BLOB[start - 1000 :],
                {"Content-Range": f"bytes {start - 1000}-{len(BLOB) - 1}/{len(BLOB)}"})  # fmt: skip

    server, client = serve(_ranged(BLOB, 50_000, on_range=earlier))
    assert _read_all(_open(server, client)) == BLOB


@pytest.mark.parametrize(
    "answer",
    [
        lambda h, start: h.reply(200, BLOB[start:],
            {"Content-Range": f"bytes {start}-{len(BLOB) - 1}/{len(BLOB)}"}),
        lambda h, start: h.reply(200, BLOB),
    ],
    ids=["200-with-content-range", "200-whole-body-again"],
)  # fmt: skip
def test_a_resume_answered_200_goes_on_where_it_stopped(serve, answer) -> None:
    """rclone's S3 server answers a Range with 200 + Content-Range; a server that ignores
    Range sends everything again. Either way the download ends with exactly the blob."""
    server, client = serve(_ranged(BLOB, 100_000, on_range=answer))
    download = _open(server, client)
    assert _read_all(download) == BLOB
    assert download.resumes == 1


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda h, start: h.reply(200, BLOB[start:]), "cannot resume"),
        (lambda h, start: h.reply(206, BLOB[start:]), "cannot resume"),
        (lambda h, start: h.reply(206, BLOB[start:],
            {"Content-Range": f"bytes {start}-{len(BLOB)}/{len(BLOB) + 1}"}), "does not fit"),
        (lambda h, start: h.reply(206, BLOB[start + 10 :],
            {"Content-Range": f"bytes {start + 10}-{len(BLOB) - 1}/{len(BLOB)}"}), "does not fit"),
        (lambda h, start: h.reply(206, BLOB[start:],
            {"Content-Range": f"bytes */{len(BLOB)}"}), "cannot resume"),
    ],
    ids=["200-part-without-content-range", "206-no-content-range", "other-total", "later-start", "bad-range"],
)  # fmt: skip
def test_a_resume_that_does_not_fit_is_refused(serve, answer, message: str) -> None:
    server, client = serve(_ranged(BLOB, 100_000, on_range=answer))
    download = _open(server, client)
    with pytest.raises(ServerError, match=message):
        _read_all(download)
    assert len(server.seen) == 2


def test_resumes_are_bounded_in_number(serve) -> None:
    def again_short(h, start: int) -> None:
        h.reply(206, BLOB[start : start + 1000], {
            "Content-Length": str(len(BLOB) - start),
            "Content-Range": f"bytes {start}-{len(BLOB) - 1}/{len(BLOB)}",
        })  # fmt: skip

    server, client = serve(_ranged(BLOB, 1000, on_range=again_short))
    download = _open(server, client, max_resumes=3)
    with pytest.raises(
        ServerError, match=r"^download failed after 3 resumes: connection closed at"
    ):
        _read_all(download)
    assert len(server.seen) == 4
    assert [s.headers.get("range") for s in server.seen[1:]] == [
        "bytes=1000-", "bytes=2000-", "bytes=3000-"]  # fmt: skip


def test_resumes_are_bounded_in_time(serve) -> None:
    server, client = serve(_ranged(BLOB, 1000, on_range=lambda h, s: h.reply(503)))
    with pytest.raises(ServerError):
        _read_all(_open(server, client, max_resumes=1000, max_seconds=0.001))
    assert len(server.seen) <= 2


def test_a_dripping_body_counts_as_a_dropped_connection(serve) -> None:
    """Every read is in time, yet less than 1 KiB arrives per window: cut and resumed.
    Nothing reached the reader, so the resume starts at 0 (no Range)."""

    def drip(h, seen: Seen) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(BLOB)))
        h.end_headers()
        for i in range(30):
            h.wfile.write(BLOB[i * 10 : i * 10 + 10])
            h.wfile.flush()
            time.sleep(0.1)

    server, client = serve(drip, timeout=0.5)  # window: 1 s for at least 1 KiB
    with pytest.raises(ServerError, match=r"after 1 resumes: less than 1024 bytes in 1 s$"):
        _read_all(_open(server, client, max_resumes=1))
    assert [s.headers.get("range") for s in server.seen] == [None, None]


def test_the_first_answer_needs_a_content_length(serve) -> None:
    def no_length(h, seen: Seen) -> None:
        h.send_response(200)
        h.end_headers()
        h.wfile.write(b"data")

    server, client = serve(no_length)
    with pytest.raises(ServerError, match=r"^download: the server sent no Content-Length$"):
        _open(server, client)


@pytest.mark.parametrize("status", [401, 403, 404, 410])
def test_an_expired_link_is_named(serve, status: int) -> None:
    server, client = serve(lambda h, seen: h.reply(status))
    with pytest.raises(
        ServerError, match=rf"^download: server answered {status} .*\(expired link\?\)$"
    ):
        _open(server, client)
    assert len(server.seen) == 1


def test_a_refused_connection_before_the_first_byte_is_retried_then_fails() -> None:
    client = DeviceClient("http://127.0.0.1:1", timeout=1)
    tries: list[int] = []
    with pytest.raises(ServerError, match=r"^download failed after 2 resumes: "):
        client.open_download(
            f"http://127.0.0.1:{free_port()}/a", backoff=0.01, max_resumes=2,
            on_resume=tries.append,
        )  # fmt: skip
    assert tries == [0, 0]
