"""A full disk under the server's data dir: 507 and one line, no stray file, no lost record.

The data dir is a real tmpfs of a few MiB (needs root), so every ENOSPC here is the
kernel's, in the multipart spool, in the artifact store and in SQLite's commit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_helpers import ADMIN, upload

from pyupdate_server.app import create_app
from pyupdate_server.services import artifacts as artifact_service
from pyupdate_server.services.users import create_user
from pyupdate_server.settings import Settings
from pyupdate_testing.artifacts import write_test_artifact
from pyupdate_testing.full_disk import fill, tmpfs

pytestmark = pytest.mark.root
MIB = 1 << 20
UPLOAD = "/api/management/v1/deployments/artifacts"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "mnt", "40m") as mnt:
        yield mnt


@pytest.fixture
def server(small_disk: Path) -> Iterator[tuple[TestClient, dict[str, str], Path]]:
    data = small_disk / "data"
    app = create_app(Settings(data_dir=data, secret_key="s" * 40))
    with TestClient(app) as client:
        with app.state.server.db.write() as session:
            create_user(session, *ADMIN)
        token = client.post("/api/management/v1/useradm/auth/login", auth=ADMIN).text
        yield client, {"Authorization": f"Bearer {token}"}, data


def artifact(tmp_path: Path, name: str, mib: int) -> Path:
    """Random payload: stored as it is, so the artifact is `mib` MiB on the server's disk."""
    return write_test_artifact(tmp_path / f"{name}.mender", name, payload=os.urandom(mib * MIB))


def stray_files(data: Path) -> list[str]:
    return sorted(p.name for p in data.rglob("*") if p.suffix in (".upload", ".mender"))


def test_an_upload_that_does_not_fit_is_507_and_leaves_nothing(server, tmp_path):
    client, auth, data = server
    first = artifact(tmp_path, "first", 12)
    assert upload(client, auth, first).status_code == 201
    kept = stray_files(data)

    r = upload(client, auth, artifact(tmp_path, "too-big", 32))
    assert r.status_code == 507
    assert r.json()["error"].startswith("server storage is full: the upload did not fit in ")
    assert "\n" not in r.json()["error"]
    assert stray_files(data) == kept  # no half-written spool file left behind
    names = [a["name"] for a in client.get(UPLOAD, headers=auth).json()]
    assert names == ["first"]

    # room again: the same server takes the next upload
    artifact_id = client.get(UPLOAD, headers=auth).json()[0]["id"]
    assert client.delete(f"{UPLOAD}/{artifact_id}", headers=auth).status_code == 204
    assert upload(client, auth, artifact(tmp_path, "after", 20)).status_code == 201


def test_a_commit_that_fails_on_a_full_disk_leaves_no_file_in_the_store(
    server, tmp_path, monkeypatch
):
    client, auth, data = server
    real_store = artifact_service.store_artifact

    def store_then_fill_the_disk(*args, **kwargs):
        row = real_store(*args, **kwargs)  # the file is in the store, the row not committed
        fill(data)
        return row

    monkeypatch.setattr(artifact_service, "store_artifact", store_then_fill_the_disk)
    r = upload(client, auth, artifact(tmp_path, "unlucky", 4))
    assert r.status_code == 507, r.text
    assert r.json()["error"] == "server storage is full: database or disk is full"
    assert stray_files(data) == []  # the moved-in file went with its rolled-back row
    (data / "filler").unlink()
    monkeypatch.undo()
    assert client.get(UPLOAD, headers=auth).json() == []
    assert upload(client, auth, artifact(tmp_path, "lucky", 4)).status_code == 201
