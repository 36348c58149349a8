"""The S3 store (storage/s3.py) against a real S3-compatible server (`rclone serve s3`):
multipart uploads that leave nothing behind on failure, presigned downloads with Range
and an expiry, the agent's download from the store, and the store going away at start
and while serving."""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import BUCKET
from fastapi.testclient import TestClient
from server_helpers import ADMIN, fetch, stored_blobs, upload

from pyupdate_agent.download import ResumableDownload
from pyupdate_server.app import build_store, create_app
from pyupdate_server.cli import main
from pyupdate_server.errors import ConfigError, StorageUnavailable
from pyupdate_server.services.users import create_user
from pyupdate_server.settings import Settings
from pyupdate_server.storage.s3 import S3BlobStore
from pyupdate_server.storage.url import parse_storage_url
from pyupdate_testing import s3
from pyupdate_testing.artifacts import write_test_artifact
from pyupdate_testing.server import free_port

ARTS = "/api/management/v1/deployments/artifacts"
NEXT = "/api/devices/v1/deployments/device/deployments/next"
SECRET = "s3-test-secret-0123456789abcdef0123456789"
_prefixes = iter(range(10**6))
ENGINES = ("sqlite",)  # the store does not depend on the database engine


def _store(server: s3.S3Server, **kwargs: object) -> S3BlobStore:
    settings = server.settings(f"s3://{BUCKET}/unit-{next(_prefixes)}")
    return S3BlobStore(
        parse_storage_url(settings["storage"]),
        endpoint_url=settings["s3_endpoint_url"],
        region=settings["s3_region"],
        access_key_id=settings["s3_access_key_id"],
        secret_access_key=settings["s3_secret_access_key"],
        **kwargs,  # type: ignore[arg-type]
    )


def _keys(store: S3BlobStore) -> list[str]:
    client = store.client
    prefix = store.location.key("")
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    try:
        uploads = client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    except client.exceptions.NoSuchUpload:
        uploads = {}
    return [o["Key"] for o in listed] + [u["Key"] for u in uploads.get("Uploads", [])]


def _file(tmp_path: Path, size: int) -> tuple[Path, bytes]:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    path = tmp_path / "blob"
    path.write_bytes(data)
    return path, data


def test_put_file_is_a_multipart_upload_read_back_whole(s3_server, tmp_path):
    store = _store(s3_server, part_size=64 * 1024)
    path, data = _file(tmp_path, 200_000)  # 4 parts, the last one short
    store.put_file("a.mender", path)
    assert not path.exists()  # consumed, like the local store's rename
    assert store.exists("a.mender")
    assert httpx.get(store.download_url("a.mender", 60)).content == data
    store.delete("a.mender")
    assert not store.exists("a.mender")


def test_a_failed_part_aborts_the_upload_and_leaves_nothing(s3_server, tmp_path, monkeypatch):
    store = _store(s3_server, part_size=64 * 1024)
    path, _ = _file(tmp_path, 200_000)
    real = store.client.upload_part
    calls = []

    def fail_on_the_third_part(**kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs["PartNumber"])
        if kwargs["PartNumber"] == 3:
            raise ConnectionResetError("connection reset by peer")
        return real(**kwargs)

    monkeypatch.setattr(store.client, "upload_part", fail_on_the_third_part)
    with pytest.raises(ConnectionResetError):
        store.put_file("b.mender", path)
    assert calls == [1, 2, 3]
    assert _keys(store) == []  # no object, and no multipart upload left open
    assert not store.exists("b.mender")


def test_presigned_url_serves_a_range_and_expires(s3_server, tmp_path):
    store = _store(s3_server)
    path, data = _file(tmp_path, 100_000)
    store.put_file("r.mender", path)
    url = store.download_url("r.mender", 2)
    part = httpx.get(url, headers={"Range": "bytes=1000-"})
    # AWS S3 answers 206; rclone 1.75 answers 200 with the same Content-Range and body
    # (docs/management-api.md, "Object storage (S3)")
    assert part.status_code in (200, 206)
    assert part.headers["content-range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
    assert part.content == data[1000:]
    closed = httpx.get(url, headers={"Range": "bytes=500-599"})
    assert closed.headers["content-range"] == f"bytes 500-599/{len(data)}"
    assert closed.content == data[500:600]
    # the signature covers the key: a leaked URL opens this one object only
    assert httpx.get(url.replace("r.mender", "other.mender")).status_code == 403
    time.sleep(3)
    expired = httpx.get(url)
    # AWS S3 answers 403 AccessDenied "Request has expired"; rclone 1.75 a 400 with
    # AccessDenied "The difference between the request time and the server's time ..."
    assert expired.status_code in (400, 403), expired.text
    assert "<Code>AccessDenied</Code>" in expired.text


class _CutOnce:
    """An opener whose first response breaks after `cut` bytes, as a dropped link does."""

    def __init__(self, cut: int) -> None:
        self.opener = urllib.request.build_opener()
        self.cut = cut
        self.ranges: list[str | None] = []

    def open(self, request, timeout=None):  # type: ignore[no-untyped-def]
        self.ranges.append(request.get_header("Range"))
        response = self.opener.open(request, timeout=timeout)
        if len(self.ranges) > 1:
            return response
        cut, sent, real_read1 = self.cut, 0, response.read1

        def read1(n: int = -1) -> bytes:
            nonlocal sent
            if sent >= cut:
                raise ConnectionResetError("connection reset by peer")
            data = real_read1(min(n, cut - sent) if n > 0 else cut - sent)
            sent += len(data)
            return data

        response.read1 = read1  # type: ignore[method-assign]
        return response


def _agent_download(url: str, opener: object) -> bytes:
    stream = ResumableDownload(opener, url, timeout=10, max_resumes=2, backoff=0.01)  # type: ignore[arg-type]
    chunks = []
    while chunk := stream.read(64 * 1024):
        chunks.append(chunk)
    stream.close()
    return b"".join(chunks)


def test_the_agent_downloads_from_a_presigned_url(s3_server, tmp_path):
    store = _store(s3_server)
    path, data = _file(tmp_path, 300_000)
    store.put_file("g.mender", path)
    assert (
        _agent_download(store.download_url("g.mender", 60), urllib.request.build_opener()) == data
    )


def test_the_agent_resumes_a_dropped_download_from_the_store(s3_server, tmp_path):
    """rclone 1.75 answers the resume's Range with 200 + Content-Range (AWS: 206); the
    agent takes either."""
    store = _store(s3_server)
    path, data = _file(tmp_path, 300_000)
    store.put_file("resume.mender", path)
    opener = _CutOnce(100_000)
    assert _agent_download(store.download_url("resume.mender", 60), opener) == data
    # resumed from the last byte the reader took (whole reads, so at or before the cut)
    resumed_at = int(opener.ranges[1].removeprefix("bytes=").rstrip("-"))
    assert len(opener.ranges) == 2 and 0 < resumed_at <= 100_000


def _app(settings: Settings) -> tuple[TestClient, dict[str, str]]:
    client = TestClient(create_app(settings))
    client.__enter__()
    with client.app.state.server.db.write() as session:  # type: ignore[attr-defined]
        create_user(session, *ADMIN)
    token = client.post("/api/management/v1/useradm/auth/login", auth=ADMIN).text
    return client, {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("store", ["s3"])
def test_a_servers_own_link_redirects_to_the_store(client, admin, tmp_path, store):
    path = write_test_artifact(tmp_path / "r.mender", "redirected")
    artifact_id = upload(client, admin, path).headers["location"].rsplit("/", 1)[1]
    state = client.app.state.server
    link = state.links.make(artifact_id, base=str(client.base_url))  # issued before S3
    r = client.get(link.uri, follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"].startswith(s3_endpoint(client))
    assert fetch(client, r.headers["location"]).content == path.read_bytes()


def s3_endpoint(client: TestClient) -> str:
    return str(client.app.state.server.store.endpoint_url)  # type: ignore[attr-defined]


@pytest.fixture
def own_s3(tmp_path: Path) -> Iterator[s3.S3Server]:
    """An S3 server of this test's own, to stop and start."""
    if s3.unavailable():
        pytest.skip(f"s3: {s3.unavailable()}")
    with s3.s3_server(tmp_path / "s3") as server:
        server.create_bucket("lost")
        yield server


def test_store_lost_while_serving_is_503_then_service_resumes(own_s3, tmp_path):
    settings = Settings(
        data_dir=tmp_path / "d", secret_key=SECRET, **own_s3.settings("s3://lost/p")
    )
    client, admin = _app(settings)
    try:
        first = write_test_artifact(tmp_path / "1.mender", "before")
        assert upload(client, admin, first).status_code == 201
        own_s3.stop()
        r = upload(client, admin, write_test_artifact(tmp_path / "2.mender", "during"))
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "5"
        assert r.json()["error"].startswith("object store s3://lost/p at http://127.0.0.1:")
        assert "\n" not in r.json()["error"]
        ready = client.get("/health/ready")
        assert ready.status_code == 503 and ready.headers["retry-after"]
        kept = client.get(ARTS, headers=admin).json()
        assert [a["name"] for a in kept] == ["before"]
        r = client.delete(f"{ARTS}/{kept[0]['id']}", headers=admin)
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert [a["name"] for a in client.get(ARTS, headers=admin).json()] == ["before"]
        assert not list(client.app.state.server.tmp_dir.iterdir())
        own_s3.start()
        assert client.get("/health/ready").json()["storage"] == "s3"
        assert len(stored_blobs(client)) == 1  # nothing of the refused upload
        r = upload(client, admin, write_test_artifact(tmp_path / "3.mender", "after"))
        assert r.status_code == 201, r.text
    finally:
        client.__exit__(None, None, None)


def test_unreachable_store_at_start_is_one_line_and_exit_3(
    tmp_path, capsys, s3_server, monkeypatch
):
    for name, value in s3_server.env().items():  # credentials; the endpoint is the flag's
        monkeypatch.setenv(name, value)
    port = free_port()  # nothing listens there
    rc = main(["serve", "--data-dir", str(tmp_path / "d"), "--storage", f"s3://{BUCKET}/x",
               "--s3-endpoint-url", f"http://127.0.0.1:{port}"])  # fmt: skip
    assert rc == 3
    err = capsys.readouterr().err
    assert err.startswith(f"error: object store s3://{BUCKET}/x at http://127.0.0.1:{port}: ")
    assert err.count("\n") == 1


def test_missing_bucket_or_bad_credentials_at_start_are_one_line_and_exit_2(s3_server, tmp_path):
    good = s3_server.settings("s3://no-such-bucket/x")
    with pytest.raises(ConfigError, match="bucket 'no-such-bucket' does not exist"):
        build_store(Settings(data_dir=tmp_path, **good))
    bad = s3_server.settings(f"s3://{BUCKET}/x") | {"s3_secret_access_key": "wrong" * 8}
    with pytest.raises(ConfigError, match="access denied"):
        build_store(Settings(data_dir=tmp_path, **bad))


def test_aws_environment_variables_configure_the_store(s3_server, tmp_path, monkeypatch):
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    store = build_store(Settings(data_dir=tmp_path, storage=f"s3://{BUCKET}/env"))
    assert store.name == "s3"
    assert not store.exists("nothing.mender")


def test_store_errors_while_serving_are_storage_unavailable(own_s3):
    store = _store_on(own_s3)
    own_s3.stop()
    with pytest.raises(StorageUnavailable):
        store.ping()
    own_s3.start()
    store.ping()


def _store_on(server: s3.S3Server) -> S3BlobStore:
    settings = server.settings("s3://lost/q")
    return S3BlobStore(
        parse_storage_url(settings["storage"]),
        endpoint_url=settings["s3_endpoint_url"],
        access_key_id=settings["s3_access_key_id"],
        secret_access_key=settings["s3_secret_access_key"],
    )


def test_serve_with_the_store_in_its_config_file_hands_out_presigned_urls(s3_server, tmp_path):
    from pyupdate_testing.server import live_server

    conf = tmp_path / "server.toml"
    conf.write_text(
        "".join(f'{k} = "{v}"\n' for k, v in s3_server.settings(f"s3://{BUCKET}/serve").items())
    )
    conf.chmod(0o600)
    with live_server(tmp_path, config=conf) as server:
        path = write_test_artifact(tmp_path / "served.mender", "served")
        server.upload(path)
        artifact = server.api.get(ARTS).json()[0]
        link = server.api.get(f"{ARTS}/{artifact['id']}/download").json()["uri"]
        assert link.startswith(f"{s3_server.endpoint}/{BUCKET}/serve/{artifact['id']}.mender?")
        assert httpx.get(link).content == path.read_bytes()
        assert server.api.get("/health/ready").json()["storage"] == "s3"
    assert f"artifacts in object store s3://{BUCKET}/serve" in server.log.read_text()


@pytest.mark.parametrize("store", ["s3"])
def test_an_upload_streams_into_the_store_without_a_temp_file(
    client, admin, tmp_path, store, monkeypatch
):
    from pyupdate_server.api import multipart

    def no_temp_files(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("an upload to an object store was staged on local disk")

    monkeypatch.setattr(multipart.tempfile, "mkstemp", no_temp_files)
    path = write_test_artifact(tmp_path / "big.mender", "big", payload=os.urandom(20 << 20))
    r = upload(client, admin, path)  # 3 parts of 8 MiB, the last one short
    assert r.status_code == 201, r.text
    link = client.get(f"{r.headers['location']}/download", headers=admin).json()["uri"]
    assert httpx.get(link, timeout=30).content == path.read_bytes()


@pytest.mark.parametrize("store", ["s3"])
def test_an_artifact_refused_after_parts_were_sent_leaves_nothing(client, admin, tmp_path, store):
    path = write_test_artifact(tmp_path / "bad.mender", "bad", payload=os.urandom(20 << 20))
    data = bytearray(path.read_bytes())
    data[len(data) - 4 * 1024 * 1024] ^= 0xFF  # in the payload, after two parts went out
    path.write_bytes(bytes(data))
    r = upload(client, admin, path)
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith("artifact rejected: ")
    assert stored_blobs(client) == []  # no object, no multipart upload left open
    assert client.get(ARTS, headers=admin).json() == []


def test_a_presigned_url_made_20_minutes_ago_still_resumes_within_its_ttl(
    s3_server, tmp_path, monkeypatch
):
    """The store checks X-Amz-Date + X-Amz-Expires, not a fixed clock-skew window: a
    device resuming late in a long download still gets its bytes; past the TTL it is over."""
    import datetime as dt

    import botocore.auth

    store = _store(s3_server)
    path, data = _file(tmp_path, 10_000)
    store.put_file("late.mender", path)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for minutes_ago, ttl, expected in ((20, 3600, 200), (70, 3600, None)):
        signed_at = now - dt.timedelta(minutes=minutes_ago)
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda t=signed_at: t)
        r = httpx.get(store.download_url("late.mender", ttl), headers={"Range": "bytes=100-"})
        if expected is not None:
            assert r.status_code == expected, r.text
            assert r.content == data[100:]
        else:
            assert r.status_code in (400, 403), r.text


@pytest.mark.parametrize("store", ["s3"])
def test_a_client_that_disconnects_mid_upload_leaves_nothing_in_the_store(
    client, admin, tmp_path, store
):
    import asyncio

    path = write_test_artifact(tmp_path / "cut.mender", "cut", payload=os.urandom(20 << 20))
    boundary = "pyupdate-cut"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="artifact"; filename="a"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + path.read_bytes()[: 12 << 20]  # one 8 MiB part goes out, then the cut
    chunks = [body[i : i + (1 << 20)] for i in range(0, len(body), 1 << 20)]
    answer: list[dict] = []

    async def receive():  # type: ignore[no-untyped-def]
        if chunks:
            return {"type": "http.request", "body": chunks.pop(0), "more_body": True}
        return {"type": "http.disconnect"}

    async def send(message):  # type: ignore[no-untyped-def]
        answer.append(message)

    scope = {
        "type": "http", "method": "POST", "path": ARTS, "raw_path": ARTS.encode(),
        "query_string": b"", "scheme": "http", "server": ("testserver", 80),
        "client": ("127.0.0.1", 1), "http_version": "1.1", "root_path": "",
        "headers": [
            (b"authorization", admin["Authorization"].encode()),
            (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
        ],
    }  # fmt: skip
    asyncio.run(client.app(scope, receive, send))
    assert answer[0]["status"] == 400
    assert b"client disconnected during upload" in answer[1]["body"]
    assert stored_blobs(client) == []  # the part that went out was aborted with the rest
    assert client.get(ARTS, headers=admin).json() == []
