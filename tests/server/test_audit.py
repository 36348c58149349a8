"""The audit log: an entry for every management write and every login, in the write's
transaction, and Mender's query API over them (services/audit.py, api/management/auditlogs.py).
"""

from __future__ import annotations

import datetime as dt

import pytest
from server_helpers import ADMIN, accept, make_device, upload

from pyupdate_server.db.models import AuditLog
from pyupdate_server.services.roles import RULES
from pyupdate_testing.artifacts import write_test_artifact
from pyupdate_testing.device_keys import device_key, pubkey_pem

LOGS = "/api/management/v1/auditlogs/logs"
U = "/api/management/v1/useradm"
DA = "/api/management/v2/devauth"
INV = "/api/management/v1/inventory"
DEP = "/api/management/v1/deployments"
FLT = "/api/management/v2/inventory/filters"
IOT = "/api/management/v1/iot-manager/integrations"


def newest(client, admin) -> dict:  # type: ignore[no-untyped-def,type-arg]
    r = client.get(LOGS, params={"per_page": 1}, headers=admin)
    assert r.status_code == 200, r.text
    return r.json()[0]  # type: ignore[no-any-return]


class Walk:
    """Runs writes and checks each left the entry it should; remembers the routes."""

    def __init__(self, client, admin) -> None:  # type: ignore[no-untyped-def]
        self.client, self.admin, self.seen = client, admin, set()

    def __call__(  # type: ignore[no-untyped-def]
        self, method, pattern, path, action, object_type, status=(200, 201, 204), **kw
    ) -> dict:  # type: ignore[type-arg]
        kw.setdefault("headers", self.admin)
        r = self.client.request(method, path, **kw)
        assert r.status_code in status, f"{method} {path}: {r.status_code} {r.text}"
        entry = newest(self.client, self.admin)
        assert (entry["action"], entry["object"]["type"]) == (action, object_type), entry
        assert entry["address"] == "testclient"  # the peer, as uvicorn resolved it
        self.seen.add((method, pattern))
        return entry  # type: ignore[no-any-return]


def test_every_management_write_leaves_an_entry(client, admin, tmp_path):
    walk = Walk(client, admin)
    me = client.get(f"{U}/users/me", headers=admin).json()

    e = walk("POST", f"{U}/auth/login", f"{U}/auth/login", "login", "user", auth=ADMIN, headers={})
    assert e["actor"] == {"id": me["id"], "type": "user", "email": ADMIN[0], "token_id": None}
    walk(
        "POST",
        f"{U}/auth/login",
        f"{U}/auth/login",
        "login_failed",
        "user",
        status=(401,),
        auth=(ADMIN[0], "wrong password"),
        headers={},
    )

    e = walk(
        "POST",
        f"{U}/users",
        f"{U}/users",
        "create",
        "user",
        json={"email": "ops@example.com", "password": "longenough", "roles": ["read-only"]},
    )
    ops = e["object"]["id"]
    assert e["object"]["user"] == {"email": "ops@example.com"}
    assert e["after"] == {"roles": ["RBAC_ROLE_OBSERVER"]}
    e = walk(
        "PUT",
        f"{U}/users/{{user_id}}",
        f"{U}/users/{ops}",
        "update",
        "user",
        json={"roles": ["RBAC_ROLE_DEPLOYMENTS_MANAGER"]},
    )
    assert (e["before"], e["after"]) == (
        {"roles": ["RBAC_ROLE_OBSERVER"]},
        {"roles": ["RBAC_ROLE_DEPLOYMENTS_MANAGER"]},
    )
    assert e["actor"]["id"] == me["id"]
    walk("DELETE", f"{U}/users/{{user_id}}", f"{U}/users/{ops}", "delete", "user")

    e = walk(
        "POST",
        f"{U}/settings/tokens",
        f"{U}/settings/tokens",
        "create",
        "token",
        json={"name": "ci", "roles": ["release-manager"]},
    )
    token_id = e["object"]["id"]
    walk(
        "DELETE",
        f"{U}/settings/tokens/{{token_id}}",
        f"{U}/settings/tokens/{token_id}",
        "delete",
        "token",
    )

    # devices: preauthorize, admit, group, delete a key, decommission
    pem = pubkey_pem(device_key("ec"))
    e = walk(
        "POST",
        f"{DA}/devices",
        f"{DA}/devices",
        "create",
        "device",
        json={"identity_data": {"mac": "pre"}, "pubkey": pem},
    )
    assert e["after"] == {"status": "preauthorized"}
    device = make_device(client, "dev-1")
    assert device.authenticate().status_code == 401
    listed = client.get(f"{DA}/devices", params={"status": "pending"}, headers=admin).json()
    found = next(d for d in listed if d["identity_data"] == device.identity)
    dev, auth = found["id"], found["auth_sets"][0]["id"]
    e = walk(
        "PUT",
        f"{DA}/devices/{{device_id}}/auth/{{auth_id}}/status",
        f"{DA}/devices/{dev}/auth/{auth}/status",
        "accept",
        "device",
        json={"status": "accepted"},
    )
    assert e["before"] == {"status": "pending", "auth_status": "pending"}
    assert e["after"] == {"status": "accepted", "auth_status": "accepted"}
    assert e["object"]["device"] == {"identity_data": {"mac": "dev-1"}}
    e = walk(
        "PUT",
        f"{INV}/devices/{{device_id}}/group",
        f"{INV}/devices/{dev}/group",
        "update",
        "device",
        json={"group": "lab"},
    )
    assert (e["before"], e["after"]) == ({"group": None}, {"group": "lab"})
    walk(
        "DELETE",
        f"{INV}/devices/{{device_id}}/group/{{name}}",
        f"{INV}/devices/{dev}/group/lab",
        "update",
        "device",
    )

    # artifacts and deployments
    walk(
        "POST",
        f"{DEP}/artifacts",
        f"{DEP}/artifacts",
        "create",
        "artifact",
        files={
            "artifact": (
                "a.mender",
                write_test_artifact(tmp_path / "a.mender", "rel-1").read_bytes(),
            )
        },
    )
    other = accept(client, admin, make_device(client, "dev-2"))
    client.put(f"{INV}/devices/{other}/group", json={"group": "lab"}, headers=admin)
    e = walk(
        "POST",
        f"{DEP}/deployments",
        f"{DEP}/deployments",
        "create",
        "deployment",
        json={"name": "first", "artifact_name": "rel-1", "devices": [dev]},
    )
    dep = e["object"]["id"]
    assert e["object"]["deployment"] == {"name": "first", "artifact_name": "rel-1"}
    walk(
        "POST",
        f"{DEP}/deployments/group/{{group}}",
        f"{DEP}/deployments/group/lab",
        "create",
        "deployment",
        json={"name": "second", "artifact_name": "rel-1"},
    )
    # a deployment to a dynamic group (a saved filter)
    r = client.post(
        "/api/management/v2/inventory/filters",
        json={
            "name": "lab",
            "terms": [{"scope": "system", "attribute": "group", "type": "$eq", "value": "lab"}],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    walk(
        "POST",
        "/api/management/v2/deployments/deployments",
        "/api/management/v2/deployments/deployments",
        "create",
        "deployment",
        json={
            "name": "third",
            "artifact_name": "rel-1",
            "filter_id": r.headers["Location"].rsplit("/", 1)[1],
        },
    )
    e = walk(
        "PUT",
        f"{DEP}/deployments/{{deployment_id}}/status",
        f"{DEP}/deployments/{dep}/status",
        "pause",
        "deployment",
        json={"status": "paused"},
    )
    assert (e["before"]["status"], e["after"]["status"]) == ("pending", "paused")
    e = walk(
        "PUT",
        f"{DEP}/deployments/{{deployment_id}}/status",
        f"{DEP}/deployments/{dep}/status",
        "abort",
        "deployment",
        json={"status": "aborted"},
    )
    assert e["after"]["aborted"] is True

    r = upload(client, admin, write_test_artifact(tmp_path / "b.mender", "rel-2"))
    art = r.headers["Location"].rsplit("/", 1)[1]
    walk(
        "DELETE", f"{DEP}/artifacts/{{artifact_id}}", f"{DEP}/artifacts/{art}", "delete", "artifact"
    )
    walk(
        "DELETE",
        f"{DA}/devices/{{device_id}}/auth/{{auth_id}}",
        f"{DA}/devices/{dev}/auth/{auth}",
        "delete",
        "device",
    )
    e = walk(
        "DELETE", f"{DA}/devices/{{device_id}}", f"{DA}/devices/{other}", "decommission", "device"
    )
    assert (e["before"], e["after"]) == ({"status": "accepted"}, {"status": "decommissioned"})

    # saved filters (dynamic groups) and webhooks
    terms = [{"scope": "inventory", "attribute": "channel", "type": "$eq", "value": "beta"}]
    e = walk("POST", FLT, FLT, "create", "filter", json={"name": "beta", "terms": terms})
    flt = e["object"]["id"]
    walk("DELETE", f"{FLT}/{{filter_id}}", f"{FLT}/{flt}", "delete", "filter")
    http = {"url": "http://127.0.0.1:9/hook", "secret": "ab" * 16}
    body = {"provider": "webhook", "credentials": {"type": "http", "http": http}}
    e = walk("POST", IOT, IOT, "create", "integration", json=body)
    hook = e["object"]["id"]
    e = walk(
        "PUT",
        f"{IOT}/{{integration_id}}/credentials",
        f"{IOT}/{hook}/credentials",
        "update",
        "integration",
        json={"type": "http", "http": {**http, "url": "http://127.0.0.1:9/other"}},
    )
    assert e["after"] == {"url": "http://127.0.0.1:9/other"}
    walk("DELETE", f"{IOT}/{{integration_id}}", f"{IOT}/{hook}", "delete", "integration")

    # every write; searching with a POST body reads
    writes = {key for key in RULES if key[0] != "GET" and not key[1].endswith("/search")}
    assert writes - walk.seen == set(), "a write route without an audit check here"


def test_a_refused_change_leaves_no_entry(client, admin):
    before = client.get(LOGS, headers=admin).headers["X-Total-Count"]
    me = client.get(f"{U}/users/me", headers=admin).json()["id"]
    assert client.delete(f"{U}/users/{me}", headers=admin).status_code == 409
    assert (
        client.put(
            f"{DEP}/deployments/nope/status", json={"status": "paused"}, headers=admin
        ).status_code
        == 404
    )
    assert client.get(LOGS, headers=admin).headers["X-Total-Count"] == before


def test_a_token_is_named_as_the_actor(client, admin):
    token = client.post(f"{U}/settings/tokens", json={"name": "ci"}, headers=admin).text
    pat = {"Authorization": f"Bearer {token}"}
    client.put(f"{INV}/devices/none/group", json={"group": "g"}, headers=pat)  # 404: no entry
    r = client.post(
        f"{U}/users", json={"email": "x@example.com", "password": "longenough"}, headers=pat
    )
    assert r.status_code == 201
    entry = newest(client, admin)
    assert (
        entry["actor"]["token_id"]
        == client.get(f"{U}/settings/tokens", headers=admin).json()[0]["id"]
    )
    assert entry["actor"]["email"] == ADMIN[0]


@pytest.fixture
def some_entries(client, admin) -> list[str]:  # type: ignore[no-untyped-def]
    ids = []
    for n in range(5):
        r = client.post(
            f"{U}/users",
            json={"email": f"u{n}@example.com", "password": "longenough"},
            headers=admin,
        )
        ids.append(r.json()["id"])
    return ids


def test_logs_are_paged_sorted_and_filtered(client, admin, some_entries):
    r = client.get(
        LOGS, params={"object_type": "user", "action": "create", "per_page": 2}, headers=admin
    )
    assert r.headers["X-Total-Count"] == "5"
    assert [e["object"]["id"] for e in r.json()] == some_entries[::-1][:2]
    r = client.get(
        LOGS,
        params={"object_type": "user", "action": "create", "per_page": 2, "page": 3, "sort": "asc"},
        headers=admin,
    )
    assert [e["object"]["id"] for e in r.json()] == some_entries[4:]
    r = client.get(LOGS, params={"object_id": some_entries[1]}, headers=admin)
    assert [e["object"]["user"]["email"] for e in r.json()] == ["u1@example.com"]
    me = client.get(f"{U}/users/me", headers=admin).json()["id"]
    r = client.get(LOGS, params={"actor_id": me, "action": "create"}, headers=admin)
    assert r.headers["X-Total-Count"] == "5"
    now = int(dt.datetime.now(dt.UTC).timestamp())
    r = client.get(LOGS, params={"start_date": now + 3600}, headers=admin)
    assert r.json() == []
    r = client.get(LOGS, params={"end_date": "2000-01-01T00:00:00Z"}, headers=admin)
    assert r.json() == []
    r = client.get(
        LOGS,
        params={
            "start_date": now - 3600,
            "end_date": now + 3600,
            "object_type": "user",
            "action": "create",
        },
        headers=admin,
    )
    assert len(r.json()) == 5


@pytest.mark.parametrize(
    ("params", "status", "error"),
    [
        ({"per_page": 501}, 422, "query.per_page: Input should be less than or equal to 500"),
        ({"page": 0}, 422, "query.page: Input should be greater than or equal to 1"),
        ({"object_type": "bogus"}, 422, "query.object_type: Input should be"),
        ({"sort": "up"}, 422, "query.sort: Input should be 'asc' or 'desc'"),
        ({"start_date": "yesterday"}, 400, "start_date: 'yesterday' is not Unix time"),
        ({"end_date": "2026-01-01T00:00:00"}, 400, "end_date: '2026-01-01T00:00:00' has no time"),
        ({"start_date": "200", "end_date": "100"}, 400, "start_date is after end_date"),
    ],
)
def test_bad_filters_get_one_line(client, admin, params, status, error):
    r = client.get(LOGS, params=params, headers=admin)
    assert r.status_code == status
    assert r.json()["error"].startswith(error)
    assert "\n" not in r.json()["error"]


def test_old_entries_are_pruned_on_a_later_write(client, admin, settings):
    state = client.app.state.server
    old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(
        days=settings.audit_retention_days + 1
    )
    with state.db.write() as session:
        session.add(
            AuditLog(
                time=old,
                actor_type="user",
                actor_id="x",
                actor_email="old",
                address="",
                action="create",
                object_type="user",
                object_id="gone",
                object_data={},
                change="",
            )
        )
    assert client.get(LOGS, params={"object_id": "gone"}, headers=admin).json() != []
    state.audit._next_prune = 0.0  # the login in the fixture already pruned once
    client.post(
        f"{U}/users", json={"email": "n@example.com", "password": "longenough"}, headers=admin
    )
    assert client.get(LOGS, params={"object_id": "gone"}, headers=admin).json() == []


def test_the_command_line_records_what_it_does(tmp_path):
    from pyupdate_server.cli import main
    from pyupdate_server.db.engine import Database
    from pyupdate_server.services import audit

    data = tmp_path / "data"
    assert (
        main(
            [
                "user",
                "create",
                "--data-dir",
                str(data),
                "--username",
                "ro@example.com",
                "--password",
                "longenough",
                "--role",
                "read-only",
            ]
        )
        == 0
    )
    db = Database(f"sqlite:///{data / 'server.db'}")
    try:
        with db.read() as session:
            rows, total = audit.find(session, audit.Query(), 1, 10)
            assert total == 1
            assert (rows[0].actor_email, rows[0].address) == (audit.SYSTEM.email, "local")
            assert rows[0].after == {"roles": ["RBAC_ROLE_OBSERVER"]}
    finally:
        db.dispose()
