"""Artifacts: validated upload, 409 on duplicates, list/show/download/delete, signatures.

Tests marked s3 run with the local store and with an S3 store (conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from server_helpers import ADMIN, fetch, stored_blobs, upload

from pyupdate_server.app import create_app
from pyupdate_server.services.users import create_user
from pyupdate_server.settings import Settings
from pyupdate_testing.artifacts import write_test_artifact

ARTS = "/api/management/v1/deployments/artifacts"


def _stored_files(settings) -> list[Path]:
    return sorted((settings.data_dir / "artifacts").iterdir())


@pytest.mark.s3
def test_upload_then_list_show_download(client, admin, settings, tmp_path):
    path = write_test_artifact(tmp_path / "r1.mender", "release-1")
    r = upload(client, admin, path, "first")
    assert r.status_code == 201, r.text
    artifact_id = r.headers["location"].rsplit("/", 1)[1]
    listed = client.get(ARTS, headers=admin).json()
    assert [a["name"] for a in listed] == ["release-1"]
    shown = client.get(f"{ARTS}/{artifact_id}", headers=admin).json()
    assert shown["device_types_compatible"] == ["qemux86-64"]
    assert shown["description"] == "first"
    assert shown["size"] == path.stat().st_size
    assert shown["updates"] == [{"type_info": {"type": "single-file"}}]
    assert shown["artifact_provides"]["rootfs-image.single-file.version"] == "release-1"
    link = client.get(f"{ARTS}/{artifact_id}/download", headers=admin).json()
    body = fetch(client, link["uri"])
    assert body.status_code == 200
    assert body.content == path.read_bytes()
    assert [b.rsplit("/", 1)[-1] for b in stored_blobs(client)] == [f"{artifact_id}.mender"]
    assert not list(client.app.state.server.tmp_dir.iterdir())  # no upload left behind


@pytest.mark.s3
def test_same_name_and_depends_is_409_other_device_type_is_not(client, admin, tmp_path):
    a = write_test_artifact(tmp_path / "a.mender", "rel")
    assert upload(client, admin, a).status_code == 201
    dup = upload(client, admin, a)
    assert dup.status_code == 409
    assert "already exists" in dup.json()["error"]
    assert len(stored_blobs(client)) == 1  # the refused copy never reached the store
    b = write_test_artifact(tmp_path / "b.mender", "rel", device_types=("other",))
    assert upload(client, admin, b).status_code == 201


@pytest.mark.s3
def test_corrupt_artifact_is_refused_with_the_readers_message(client, admin, settings, tmp_path):
    path = write_test_artifact(tmp_path / "c.mender", "broken", payload=os.urandom(200000))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the payload: random data does not compress
    path.write_bytes(bytes(data))
    r = upload(client, admin, path)
    assert r.status_code == 422
    assert r.json()["error"].startswith("artifact rejected: ")
    assert client.get(ARTS, headers=admin).json() == []
    assert stored_blobs(client) == []
    assert not list(client.app.state.server.tmp_dir.iterdir())  # no upload left behind


@pytest.mark.s3
@pytest.mark.parametrize(
    "content",
    [b"", b"not a tar at all" * 100, b"\0" * 10240],
)
def test_garbage_upload_is_4xx_and_nothing_stored(client, admin, settings, tmp_path, content):
    path = tmp_path / "g.mender"
    path.write_bytes(content)
    r = upload(client, admin, path)
    assert 400 <= r.status_code < 500
    assert r.json()["error"]
    assert stored_blobs(client) == []


def test_upload_without_artifact_part_is_400(client, admin):
    r = client.post(ARTS, data={"description": "x"}, files={"other": ("x", b"1")}, headers=admin)
    assert r.status_code == 400
    assert "'artifact'" in r.json()["error"]


def test_non_multipart_upload_is_400(client, admin):
    r = client.post(ARTS, content=b"{}", headers={**admin, "Content-Type": "application/json"})
    assert r.status_code == 400


def test_oversized_upload_is_413_and_nothing_stored(tmp_path):
    settings = Settings(data_dir=tmp_path / "d", secret_key="k" * 40, max_artifact_size=4096)
    with TestClient(create_app(settings)) as client:
        with client.app.state.server.db.write() as session:  # type: ignore[attr-defined]
            create_user(session, *ADMIN)
        token = client.post("/api/management/v1/useradm/auth/login", auth=ADMIN).text
        path = write_test_artifact(tmp_path / "big.mender", "big", payload=b"\x01" * 50000)
        r = upload(client, {"Authorization": f"Bearer {token}"}, path)
        assert r.status_code == 413
        assert "limit of 4096" in r.json()["error"]
        assert _stored_files(settings) == []
        assert not list(client.app.state.server.tmp_dir.iterdir())  # no upload left behind


def test_anonymous_upload_is_401(client, tmp_path):
    path = write_test_artifact(tmp_path / "a.mender", "anon")
    assert upload(client, {}, path).status_code == 401


@pytest.mark.s3
def test_delete_removes_row_and_file(client, admin, settings, tmp_path):
    path = write_test_artifact(tmp_path / "d.mender", "del")
    artifact_id = upload(client, admin, path).headers["location"].rsplit("/", 1)[1]
    assert len(stored_blobs(client)) == 1
    assert client.delete(f"{ARTS}/{artifact_id}", headers=admin).status_code == 204
    assert client.get(f"{ARTS}/{artifact_id}", headers=admin).status_code == 404
    assert stored_blobs(client) == []


def _keys(tmp_path):
    from pyupdate_host.sign import load_signer

    key = ec.generate_private_key(ec.SECP256R1())
    priv = tmp_path / "k.pem"
    priv.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    pub = tmp_path / "k.pub"
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return load_signer(priv), pub


def test_server_requiring_signatures_refuses_unsigned_and_accepts_signed(tmp_path):
    signer, pub = _keys(tmp_path)
    settings = Settings(
        data_dir=tmp_path / "d", secret_key="k" * 40, require_signature=True, verify_keys=(pub,)
    )
    with TestClient(create_app(settings)) as client:
        with client.app.state.server.db.write() as session:  # type: ignore[attr-defined]
            create_user(session, *ADMIN)
        admin = {
            "Authorization": "Bearer "
            + client.post("/api/management/v1/useradm/auth/login", auth=ADMIN).text
        }
        unsigned = write_test_artifact(tmp_path / "u.mender", "unsigned")
        r = upload(client, admin, unsigned)
        assert r.status_code == 422
        assert "artifact rejected" in r.json()["error"]
        signed = write_test_artifact(tmp_path / "s.mender", "signed", signer=signer)
        r = upload(client, admin, signed)
        assert r.status_code == 201, r.text
        shown = client.get(r.headers["location"], headers=admin).json()
        assert shown["signed"] is True
