"""Artifact download bodies: one Range, 416, If-Range, HEAD, and read sizes that follow the client."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient

from pyupdate_server.api import file_response
from pyupdate_server.api.file_response import (
    MAX_CHUNK,
    MIN_CHUNK,
    PROVEN,
    ArtifactFileResponse,
    RangeNotSatisfiable,
    next_chunk,
    parse_range,
)

SIZE = 24 * 1024 * 1024 + 123


@pytest.mark.parametrize(
    ("header", "span"),
    [
        (None, None),
        ("bytes=0-", (0, 100)),
        ("bytes=10-19", (10, 20)),
        ("bytes=90-1000", (90, 100)),
        ("bytes=-5", (95, 100)),
        ("bytes=-500", (0, 100)),
        ("bytes=99-", (99, 100)),
        # ignored: malformed, more than one range, last before first
        ("items=1-2", None),
        ("bytes=1-2,5-6", None),
        ("bytes=5-2", None),
        ("bytes=-", None),
    ],
)
def test_parse_range(header, span):
    assert parse_range(header, 100) == span


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0"])
def test_unsatisfiable_ranges(header):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


def test_read_size_grows_only_for_a_client_that_proved_fast():
    fast = 0.0001
    # the first 16 MiB: fast sends into a socket buffer prove nothing yet
    assert next_chunk(MIN_CHUNK, MIN_CHUNK, fast, PROVEN - 1, 0.01) == MIN_CHUNK
    # 16 MiB at 16 MiB/s: a slow client whose buffer took a fast send
    assert next_chunk(MIN_CHUNK, MIN_CHUNK, fast, PROVEN, 1.0) == MIN_CHUNK
    chunk = MIN_CHUNK
    for _ in range(10):
        chunk = next_chunk(chunk, chunk, fast, PROVEN, 0.05)
    assert chunk == MAX_CHUNK
    # one slow send and it is back to the minimum
    assert next_chunk(MAX_CHUNK, MAX_CHUNK, 1.0, 4 * PROVEN, 0.2) == MIN_CHUNK


@pytest.fixture(scope="module")
def blob(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("blob") / "a.mender"
    path.write_bytes(os.urandom(SIZE))
    return path


@pytest.fixture(scope="module")
def client(blob: Path):
    def serve(request: Request) -> ArtifactFileResponse:
        return ArtifactFileResponse(
            blob, request.headers, media_type="application/vnd.mender-artifact", filename="a.mender"
        )

    app = Starlette(routes=[Route("/a", serve, methods=["GET", "HEAD"])])
    with TestClient(app) as c:
        yield c


def test_whole_file(client, blob):
    r = client.get("/a")
    assert r.status_code == 200
    assert r.headers["content-length"] == str(SIZE)
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-disposition"] == 'attachment; filename="a.mender"'
    assert r.content == blob.read_bytes()


def test_resume_from_the_middle(client, blob):
    start = 5 * 1024 * 1024 + 7
    r = client.get("/a", headers={"Range": f"bytes={start}-"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes {start}-{SIZE - 1}/{SIZE}"
    assert r.headers["content-length"] == str(SIZE - start)
    assert r.content == blob.read_bytes()[start:]


def test_range_past_the_end_is_416(client):
    r = client.get("/a", headers={"Range": f"bytes={SIZE}-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{SIZE}"
    assert r.content == b""


def test_if_range_that_no_longer_matches_sends_everything(client, blob):
    etag = client.head("/a").headers["etag"]
    r = client.get("/a", headers={"Range": "bytes=10-19", "If-Range": etag})
    assert (r.status_code, r.content) == (206, blob.read_bytes()[10:20])
    r = client.get("/a", headers={"Range": "bytes=10-19", "If-Range": '"another-version"'})
    assert r.status_code == 200
    assert len(r.content) == SIZE


def test_head_has_the_length_and_no_body(client):
    r = client.head("/a")
    assert r.status_code == 200
    assert r.headers["content-length"] == str(SIZE)
    assert r.content == b""


def _bodies(blob: Path, send_seconds: float) -> list[bytes]:
    """Run the response against an ASGI `send` that takes `send_seconds` per body chunk."""
    sent: list[bytes] = []

    async def send(message):
        if message["type"] == "http.response.body":
            sent.append(message["body"])
            await asyncio.sleep(send_seconds)

    async def receive():
        return {"type": "http.disconnect"}

    response = ArtifactFileResponse(blob, Headers({}), "application/octet-stream", "a")
    asyncio.run(response({"type": "http", "method": "GET"}, receive, send))
    return sent


def test_a_fast_client_gets_big_reads_after_16_mib(blob, monkeypatch):
    # "fast" at 1 MiB/s: the reads here must not depend on how fast the CI machine is
    monkeypatch.setattr(file_response, "FAST_CLIENT", 1 << 20)
    sizes = [len(b) for b in _bodies(blob, 0)]
    first = PROVEN // MIN_CHUNK
    assert set(sizes[:first]) == {MIN_CHUNK}
    assert sizes[first : first + 3] == [2 * MIN_CHUNK, 4 * MIN_CHUNK, 8 * MIN_CHUNK]
    assert MAX_CHUNK in sizes
    assert sum(sizes) == SIZE


def test_a_slow_client_holds_one_small_chunk_at_a_time(tmp_path):
    small = tmp_path / "small.mender"
    small.write_bytes(os.urandom(2 * 1024 * 1024 + 5))
    # 64 KiB taking 10 ms is 6.4 MiB/s: a device on a slow link
    bodies = _bodies(small, 0.01)
    assert {len(b) for b in bodies[:-1]} == {MIN_CHUNK}
    assert hashlib.sha256(b"".join(bodies)).digest() == hashlib.sha256(small.read_bytes()).digest()
