"""Deltas the server makes in the background (delta_worker.py, docs/deployments.md,
"Delta updates"), with the real generator (pyupdate_host.delta.make_delta) in its child
process: made once and handed out, not smaller, signing, the cache bound, failures, and
two server processes making one delta."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from delta_helpers import DEVICE_TYPE, image, rootfs_artifact, sha256
from fastapi.testclient import TestClient
from server_helpers import ADMIN, accept, make_device, upload

from pyupdate_server.app import create_app
from pyupdate_server.errors import Conflict
from pyupdate_server.services.users import create_user
from pyupdate_testing.device_keys import pubkey_pem
from pyupdate_testing.server import live_server

pytest.importorskip("pyupdate_host.delta", reason="the delta generator has not landed")

DEV2 = "/api/devices/v2/deployments/device/deployments"
INV = "/api/devices/v1/inventory/device/attributes"
MGMT = "/api/management/v1/deployments"
PYUPDATE = {"pyupdate_version": "0.1.0", "update_modules": ["rootfs-image", "pyupdate-delta"]}
SIZE = 1 << 20


@pytest.fixture
def server(settings) -> Iterator[object]:
    """server(**settings) -> (client, admin headers): the app with its delta worker."""

    @contextlib.contextmanager
    def make(**changes: object) -> Iterator[tuple[TestClient, dict[str, str]]]:
        with TestClient(create_app(settings.replace(**changes))) as client:
            with (
                contextlib.suppress(Conflict),  # a second app on the same data dir
                client.app.state.server.db.write() as session,  # type: ignore[attr-defined]
            ):
                create_user(session, *ADMIN)
            token = client.post("/api/management/v1/useradm/auth/login", auth=ADMIN).text
            yield client, {"Authorization": f"Bearer {token}"}

    return make


def changed(tmp, name, base, offset=5000):
    """`base` with 100 bytes changed: a delta of a few KiB."""
    data = bytearray(base.read_bytes())
    data[offset : offset + 100] = os.urandom(100)
    path = tmp / f"{name}.img"
    path.write_bytes(bytes(data))
    return path


def device_on(client, admin, name, checksum):
    device = make_device(client, name)
    device_id = accept(client, admin, device)
    attrs = [
        {"name": k, "value": v} for k, v in {**PYUPDATE, "rootfs-image.checksum": checksum}.items()
    ]
    assert client.patch(INV, json=attrs, headers=device.headers).status_code == 200
    return device, device_id


def deploy(client, admin, artifact, ids):
    r = client.post(
        f"{MGMT}/deployments",
        json={"name": f"to {artifact}", "artifact_name": artifact, "devices": ids},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return r.headers["location"].rsplit("/", 1)[1]


def wait_jobs(get, dep, timeout=60.0):
    """The deployment's delta jobs once none is queued or running."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = get(f"{MGMT}/deployments/{dep}").json()["delta_jobs"]
        if jobs and all(j["status"] not in ("queued", "running") for j in jobs):
            return jobs
        assert time.monotonic() < deadline, jobs
        time.sleep(0.3)


def next_artifact(client, device, checksum):
    provides = {
        "artifact_name": "r1",
        "device_type": DEVICE_TYPE,
        "rootfs-image.checksum": checksum,
    }
    r = client.post(f"{DEV2}/next", json={"device_provides": provides}, headers=device.headers)
    assert r.status_code == 200, r.text
    return r.json()["artifact"]


def artifacts(client, admin, name):
    return client.get(f"{MGMT}/artifacts", headers=admin, params={"name": name}).json()


@pytest.mark.s3
def test_the_server_makes_the_delta_once_and_devices_on_its_base_get_it(server, tmp_path, store):
    a = image(tmp_path, "r1", size=SIZE)
    b = changed(tmp_path, "r2", a)
    with server() as (client, admin):
        for path in (rootfs_artifact(tmp_path, "r1", a), rootfs_artifact(tmp_path, "r2", b)):
            assert upload(client, admin, path).status_code == 201
        device, device_id = device_on(client, admin, "p", sha256(a))
        dep = deploy(client, admin, "r2", [device_id])
        [job] = wait_jobs(lambda url: client.get(url, headers=admin), dep)
        assert (job["status"], job["old_checksum"], job["error"]) == ("done", sha256(a), "")
        [delta] = [x for x in artifacts(client, admin, "r2") if x["kind"] == "delta"]
        assert delta["generated"] and delta["id"] == job["delta_artifact_id"]
        assert delta["artifact_depends"]["rootfs-image.checksum"] == sha256(a)
        assert delta["artifact_provides"]["rootfs-image.checksum"] == sha256(b)
        assert delta["size"] < (tmp_path / "r2.mender").stat().st_size // 10
        got = next_artifact(client, device, sha256(a))
        assert got["id"] == delta["id"] and "pyupdate_full_source" in got
        shown = client.get(f"{MGMT}/deployments/{dep}", headers=admin).json()["delivery"]
        assert (shown["delta"], shown["full"]) == (1, 0) and shown["bytes_saved"] > 0


def test_a_delta_that_is_not_smaller_is_recorded_and_devices_get_the_full_artifact(
    server, tmp_path
):
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    a.write_bytes(os.urandom(256 * 1024))
    b.write_bytes(os.urandom(256 * 1024))  # nothing in common
    with server() as (client, admin):
        for path in (rootfs_artifact(tmp_path, "r1", a), rootfs_artifact(tmp_path, "r2", b)):
            assert upload(client, admin, path).status_code == 201
        device, device_id = device_on(client, admin, "p", sha256(a))
        dep = deploy(client, admin, "r2", [device_id])
        [job] = wait_jobs(lambda url: client.get(url, headers=admin), dep)
        assert job["status"] == "not_smaller" and "\n" not in job["error"]
        assert [x["kind"] for x in artifacts(client, admin, "r2")] == ["full"]
        got = next_artifact(client, device, sha256(a))
        assert "pyupdate_full_source" not in got


def _key(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    priv, pub = tmp_path / "delta.pem", tmp_path / "delta.pub"
    priv.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return priv, pub


def test_a_signed_artifact_gets_deltas_only_with_a_signing_key(server, tmp_path):
    from pyupdate_host.sign import load_signer

    priv, pub = _key(tmp_path)
    signer = load_signer(priv)
    a = image(tmp_path, "r1", size=SIZE)
    b = changed(tmp_path, "r2", a)
    olds = rootfs_artifact(tmp_path, "r1", a, signer=signer)
    news = rootfs_artifact(tmp_path, "r2", b, signer=signer)
    with server(verify_keys=(pub,)) as (client, admin):
        for path in (olds, news):
            assert upload(client, admin, path).status_code == 201
        _, device_id = device_on(client, admin, "p", sha256(a))
        dep = deploy(client, admin, "r2", [device_id])
        [job] = wait_jobs(lambda url: client.get(url, headers=admin), dep)
        assert job["status"] == "skipped"
        assert job["error"] == "r2 is signed and no delta_signing_key is set"
    with server(verify_keys=(pub,), require_signature=True, delta_signing_key=priv) as (
        client,
        admin,
    ):
        # the same data dir: a new deployment asks again, and a key is now set
        with client.app.state.server.db.write() as session:  # type: ignore[attr-defined]
            from sqlalchemy import delete

            from pyupdate_server.db.models import DeltaJob

            session.execute(delete(DeltaJob))
        dep = deploy(client, admin, "r2", [device_id])
        [job] = wait_jobs(lambda url: client.get(url, headers=admin), dep)
        assert job["status"] == "done", job
        [delta] = [x for x in artifacts(client, admin, "r2") if x["kind"] == "delta"]
        assert delta["signed"]  # and it passed require_signature with verify_keys


def test_the_cache_keeps_to_its_bytes_by_evicting_the_oldest_delta(server, tmp_path):
    a = image(tmp_path, "r1", size=SIZE)
    b = changed(tmp_path, "r2", a)
    c = changed(tmp_path, "r3", a, offset=90_000)
    paths = [rootfs_artifact(tmp_path, n, img) for n, img in (("r1", a), ("r2", b), ("r3", c))]
    with server(delta_cache_size=1) as (client, admin):  # room for the newest delta only
        for path in paths:
            assert upload(client, admin, path).status_code == 201
        _, device_id = device_on(client, admin, "p", sha256(a))
        first = deploy(client, admin, "r2", [device_id])
        [job] = wait_jobs(lambda url: client.get(url, headers=admin), first)
        assert job["status"] == "done"
        second = deploy(client, admin, "r3", [device_id])
        [job] = wait_jobs(lambda url: client.get(url, headers=admin), second)
        assert job["status"] == "done"
        assert [x["kind"] for x in artifacts(client, admin, "r3")].count("delta") == 1
        # r2's delta went, and its job with it: a later hand-out may ask for it again
        assert [x["kind"] for x in artifacts(client, admin, "r2")] == ["full"]
        assert client.get(f"{MGMT}/deployments/{first}", headers=admin).json()["delta_jobs"] == []
        store = client.app.state.server.store  # type: ignore[attr-defined]
        assert len(list(store.root.iterdir())) == 4  # three full artifacts, one delta


def test_a_failed_job_keeps_one_line_and_the_deployment_carries_on(server, tmp_path):
    a = image(tmp_path, "r1", size=SIZE)
    b = changed(tmp_path, "r2", a)
    with server() as (client, admin):
        for path in (rootfs_artifact(tmp_path, "r1", a), rootfs_artifact(tmp_path, "r2", b)):
            assert upload(client, admin, path).status_code == 201
        store = client.app.state.server.store  # type: ignore[attr-defined]
        old = next(x for x in artifacts(client, admin, "r1"))
        store.delete(f"{old['id']}.mender")  # its file is lost
        device, device_id = device_on(client, admin, "p", sha256(a))
        dep = deploy(client, admin, "r2", [device_id])
        [job] = wait_jobs(lambda url: client.get(url, headers=admin), dep)
        assert job["status"] == "failed" and job["error"] and "\n" not in job["error"]
        assert next_artifact(client, device, sha256(a))["artifact_name"] == "r2"


def test_two_server_workers_make_the_delta_once(tmp_path, database_url):
    a = image(tmp_path, "r1", size=SIZE)
    b = changed(tmp_path, "r2", a)
    with live_server(tmp_path / "srv", database_url=database_url, workers=2) as srv:
        for path in (rootfs_artifact(tmp_path, "r1", a), rootfs_artifact(tmp_path, "r2", b)):
            srv.upload(path)
        ids = []
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            for i in range(6):
                device = make_device(client, f"w{i}")  # type: ignore[arg-type]
                ids.append(srv.preauthorize(device.identity, pubkey_pem(device.key)))
                assert device.authenticate().status_code == 200
                attrs = [
                    {"name": k, "value": v}
                    for k, v in {**PYUPDATE, "rootfs-image.checksum": sha256(a)}.items()
                ]
                assert client.patch(INV, json=attrs, headers=device.headers).status_code == 200
        dep = srv.deploy("r2", ids)
        jobs = wait_jobs(srv.api.get, dep)
        assert [(j["status"], j["old_checksum"]) for j in jobs] == [("done", sha256(a))]
        listed = srv.api.get(f"{MGMT}/artifacts", params={"name": "r2"}).json()
        assert sorted(x["kind"] for x in listed) == ["delta", "full"]
        log = srv.log.read_text()
        assert log.count("delta made") == 1, log
