"""`pyupdate-server db copy`: a populated SQLite installation moves to PostgreSQL whole.

The installation is built through the API (users, a token, devices in every state,
artifacts, deployments with per-device history and logs), copied, and a server on the
copy must give the same answers, keep every credential valid, and go on working.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_helpers import ADMIN, accept, make_device, upload

from pyupdate_server.app import create_app
from pyupdate_server.cli import main
from pyupdate_server.services.users import create_user
from pyupdate_server.settings import Settings
from pyupdate_testing.artifacts import write_test_artifact
from pyupdate_testing.device_keys import pubkey_pem

DEV = "/api/devices/v1/deployments/device/deployments"
MGMT = "/api/management/v1"
DEVAUTH = "/api/management/v2/devauth/devices"
PROVIDES = {"artifact_name": "base", "device_type": "qemux86-64"}


def _deploy(client, admin, name, devices, **extra) -> str:  # type: ignore[no-untyped-def]
    r = client.post(
        f"{MGMT}/deployments/deployments",
        json={"name": name, "artifact_name": name, "devices": devices, **extra},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return r.headers["location"].rsplit("/", 1)[1]


def _populate(client: TestClient, tmp_path: Path) -> dict[str, object]:
    """An installation with something in every table; what the checks need to know."""
    with client.app.state.server.db.write() as session:  # type: ignore[attr-defined]
        create_user(session, *ADMIN)
    token = client.post(f"{MGMT}/useradm/auth/login", auth=ADMIN).text
    admin = {"Authorization": f"Bearer {token}"}
    client.post(f"{MGMT}/useradm/auth/login", auth=("nobody@example.com", "wrong-password"))
    r = client.post(
        f"{MGMT}/useradm/users",
        json={"email": "ops@example.com", "password": "password-ops"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    pat = client.post(f"{MGMT}/useradm/settings/tokens", json={"name": "ci"}, headers=admin).text

    devices = [make_device(client, f"copy-{i}") for i in range(4)]
    ids = [accept(client, admin, d) for d in devices]
    r = client.put(f"{MGMT}/inventory/devices/{ids[0]}/group", json={"group": "lab"}, headers=admin)
    assert r.status_code in (200, 204), r.text
    attrs = [{"name": "kernel", "value": "6.1"}, {"name": "ip", "value": ["10.0.0.2", "::1"]}]
    r = client.patch("/api/devices/v1/inventory/device/attributes", json=attrs,
                     headers=devices[0].headers)  # fmt: skip
    assert r.status_code == 200
    assert make_device(client, "copy-pending").authenticate().status_code == 401
    pre = make_device(client, "copy-preauth")
    r = client.post(
        DEVAUTH,
        json={"identity_data": pre.identity, "pubkey": pubkey_pem(pre.key)},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert client.delete(f"{DEVAUTH}/{ids[3]}", headers=admin).status_code == 204

    for name in ("release-1", "release-2"):
        path = write_test_artifact(tmp_path / f"{name}.mender", name)
        assert upload(client, admin, path, description=f"{name} notes").status_code == 201

    done = _deploy(client, admin, "release-1", ids[:2], retries=1)
    for device in devices[:2]:
        assert client.get(f"{DEV}/next", params=PROVIDES, headers=device.headers).status_code == 200
    for status in ("downloading", "installing", "rebooting", "success"):
        r = client.put(f"{DEV}/{done}/status", json={"status": status}, headers=devices[0].headers)
        assert r.status_code == 204
    log = {
        "messages": [
            {"level": "error", "message": "disk full", "timestamp": "2026-12-07T10:00:00Z"}
        ]
    }
    for _ in range(2):  # a failure, retried once, then failing again
        client.put(f"{DEV}/{done}/status", json={"status": "failure"}, headers=devices[1].headers)
        client.put(f"{DEV}/{done}/log", json=log, headers=devices[1].headers)
        client.get(f"{DEV}/next", params=PROVIDES, headers=devices[1].headers)
    running = _deploy(client, admin, "release-2", ids[:3])
    assert client.get(f"{DEV}/next", params=PROVIDES, headers=devices[0].headers).status_code == 200
    r = client.put(
        f"{DEV}/{running}/status", json={"status": "downloading"}, headers=devices[0].headers
    )
    assert r.status_code == 204
    aborted = _deploy(client, admin, "release-1", [ids[2]], force_installation=True)
    r = client.put(f"{MGMT}/deployments/deployments/{aborted}/status",
                   json={"status": "aborted"}, headers=admin)  # fmt: skip
    assert r.status_code == 204
    return {
        "admin": admin,
        "pat": {"Authorization": f"Bearer {pat}"},
        "devices": devices,
        "ids": ids,
        "deployments": [done, running, aborted],
    }


def _answers(client: TestClient, world: dict) -> dict[str, object]:  # type: ignore[type-arg]
    """Every management view of the installation, as JSON (or text for logs)."""
    admin = world["admin"]
    get = lambda path, **params: client.get(path, headers=admin, params=params)  # noqa: E731
    out: dict[str, object] = {
        "devices": get(DEVAUTH, per_page=500).json(),
        "inventory": get(f"{MGMT}/inventory/devices", per_page=500).json(),
        "groups": get(f"{MGMT}/inventory/groups").json(),
        "artifacts": get(f"{MGMT}/deployments/artifacts").json(),
        "deployments": get(f"{MGMT}/deployments/deployments", per_page=100).json(),
        "users": get(f"{MGMT}/useradm/users").json(),
        "tokens": get(f"{MGMT}/useradm/settings/tokens").json(),
    }
    for dep in world["deployments"]:
        out[dep] = get(f"{MGMT}/deployments/deployments/{dep}").json()
        out[f"{dep}/devices"] = get(f"{MGMT}/deployments/deployments/{dep}/devices").json()
        for device in world["ids"]:
            r = get(f"{MGMT}/deployments/deployments/{dep}/devices/{device}/log")
            out[f"{dep}/{device}/log"] = (r.status_code, r.text)
    return out


def test_copy_moves_everything_and_a_server_on_the_copy_answers_the_same(
    pg_cluster, tmp_path, capsys
):
    data = tmp_path / "data"
    source = Settings(data_dir=data, secret_key="c" * 40)
    with TestClient(create_app(source)) as old:
        world = _populate(old, tmp_path)
        before = _answers(old, world)
        # copied while the old server still runs: the source is read in one snapshot
        target_url = pg_cluster.create_database("copy_target")  # empty: no schema at all
        assert main(["db", "copy", "--from", source.db_url, "--to", target_url]) == 0
    summary = capsys.readouterr().out
    assert "2 users" in summary and "2 artifacts" in summary and "3 deployments" in summary

    # the same data dir (secret key, artifact files), the new database
    with TestClient(create_app(source.replace(database_url=target_url))) as new:
        assert _answers(new, world) == before
        # credentials made before the move still work: a user token, a PAT, device tokens
        assert new.get(f"{MGMT}/useradm/users", headers=world["pat"]).status_code == 200
        device = world["devices"][0]
        r = new.get(f"{DEV}/next", params=PROVIDES, headers=device.headers)
        assert r.status_code == 200 and r.json()["id"] == world["deployments"][1]
        download = new.get(r.json()["artifact"]["source"]["uri"])
        assert download.status_code == 200 and len(download.content) > 0
        # and the copy goes on: new rows get ids after the copied ones (with the sequence
        # left at 1, this insert would collide with a copied row)
        dep = _deploy(new, world["admin"], "release-2", world["ids"][:3])
        rows = new.get(f"{MGMT}/deployments/deployments/{dep}/devices", headers=world["admin"])
        assert len(rows.json()) == 3


def test_copy_refuses_a_target_that_is_not_empty(pg_database, tmp_path, capsys):
    source = Settings(data_dir=tmp_path / "data", secret_key="c" * 40)
    with TestClient(create_app(source)) as client, client.app.state.server.db.write() as s:  # type: ignore[attr-defined]
        create_user(s, *ADMIN)
    target = Settings(data_dir=tmp_path / "other", secret_key="c" * 40, database_url=pg_database)
    with TestClient(create_app(target)) as client, client.app.state.server.db.write() as s:  # type: ignore[attr-defined]
        create_user(s, "someone@example.com", "password-1")
    assert main(["db", "copy", "--from", source.db_url, "--to", pg_database]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not empty (table users has rows)" in err, err


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("sqlite:///{tmp}/missing.db", "no such database file"),
        ("mysql://u@h/db", "is not supported"),
    ],
)
def test_copy_refuses_bad_sources_with_one_line(pg_database, tmp_path, capsys, source, message):
    assert main(["db", "copy", "--from", source.format(tmp=tmp_path), "--to", pg_database]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
