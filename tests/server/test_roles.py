"""Roles on every management route: the table is complete, and every route answers every
role (as a login JWT and as a personal access token) as EXPECTED says.

EXPECTED is written out here on purpose instead of read from services/roles.py: it is the
specification the table in the code is checked against.
"""

from __future__ import annotations

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute, iter_route_contexts
from server_helpers import accept, make_device

from pyupdate_server.api.deps import CurrentUser, current_user
from pyupdate_server.services.roles import RULES

LOGIN = "/api/management/v1/useradm/auth/login"
USERS = "/api/management/v1/useradm/users"
TOKENS = "/api/management/v1/useradm/settings/tokens"
MGMT = "/api/management/"

RO, RM, AD = "read-only", "release-manager", "admin"
ROLE_NAMES = {
    RO: "RBAC_ROLE_OBSERVER",
    RM: "RBAC_ROLE_DEPLOYMENTS_MANAGER",
    AD: "RBAC_ROLE_PERMIT_ALL",
}
RANK = {RO: 1, RM: 2, AD: 3}
# the least role per route; "login": any role, but with a login JWT only (not a PAT)
U, DA, INV, DEP, AU = (
    "/api/management/v1/useradm",
    "/api/management/v2/devauth",
    "/api/management/v1/inventory",
    "/api/management/v1/deployments",
    "/api/management/v1/auditlogs",
)
INV2, DEP2, IOT = (
    "/api/management/v2/inventory",
    "/api/management/v2/deployments",
    "/api/management/v1/iot-manager",
)
EXPECTED: dict[tuple[str, str], str] = {
    ("GET", f"{U}/users/me"): RO,
    ("GET", f"{U}/roles"): RO,
    ("GET", f"{U}/users"): AD,
    ("POST", f"{U}/users"): AD,
    ("GET", f"{U}/users/{{user_id}}"): AD,
    ("PUT", f"{U}/users/{{user_id}}"): AD,
    ("DELETE", f"{U}/users/{{user_id}}"): AD,
    ("GET", f"{U}/settings/tokens"): RO,
    ("POST", f"{U}/settings/tokens"): "login",
    ("DELETE", f"{U}/settings/tokens/{{token_id}}"): RO,
    ("GET", f"{DA}/devices"): RO,
    ("GET", f"{DA}/devices/count"): RO,
    ("GET", f"{DA}/devices/{{device_id}}"): RO,
    ("GET", f"{DA}/devices/{{device_id}}/auth/{{auth_id}}/status"): RO,
    ("POST", f"{DA}/devices"): AD,
    ("DELETE", f"{DA}/devices/{{device_id}}"): AD,
    ("PUT", f"{DA}/devices/{{device_id}}/auth/{{auth_id}}/status"): AD,
    ("DELETE", f"{DA}/devices/{{device_id}}/auth/{{auth_id}}"): AD,
    ("GET", f"{INV}/devices"): RO,
    ("GET", f"{INV}/devices/{{device_id}}"): RO,
    ("GET", f"{INV}/devices/{{device_id}}/group"): RO,
    ("PUT", f"{INV}/devices/{{device_id}}/group"): AD,
    ("DELETE", f"{INV}/devices/{{device_id}}/group/{{name}}"): AD,
    ("GET", f"{INV}/groups"): RO,
    ("GET", f"{INV}/groups/{{name}}/devices"): RO,
    ("GET", f"{INV}/statistics"): RO,
    ("GET", f"{DEP}/artifacts"): RO,
    ("GET", f"{DEP}/artifacts/list"): RO,
    ("GET", f"{DEP}/artifacts/{{artifact_id}}"): RO,
    ("GET", f"{DEP}/artifacts/{{artifact_id}}/download"): RO,
    ("POST", f"{DEP}/artifacts"): RM,
    ("DELETE", f"{DEP}/artifacts/{{artifact_id}}"): RM,
    ("GET", f"{DEP}/deployments"): RO,
    ("GET", f"{DEP}/deployments/{{deployment_id}}"): RO,
    ("GET", f"{DEP}/deployments/{{deployment_id}}/statistics"): RO,
    ("GET", f"{DEP}/deployments/{{deployment_id}}/devices"): RO,
    ("GET", f"{DEP}/deployments/{{deployment_id}}/devices/list"): RO,
    ("GET", f"{DEP}/deployments/{{deployment_id}}/devices/{{device_id}}/log"): RO,
    ("GET", f"{DEP}/deployments/devices/{{device_id}}"): RO,
    ("POST", f"{DEP}/deployments"): RM,
    ("POST", f"{DEP}/deployments/group/{{group}}"): RM,
    ("PUT", f"{DEP}/deployments/{{deployment_id}}/status"): RM,
    ("GET", f"{AU}/logs"): AD,
    # dynamic groups (saved filters) and deployments to them
    ("GET", f"{INV2}/filters"): RO,
    ("GET", f"{INV2}/filters/{{filter_id}}"): RO,
    ("GET", f"{INV2}/filters/{{filter_id}}/search"): RO,
    ("POST", f"{INV2}/filters/search"): RO,
    ("POST", f"{INV2}/filters"): AD,
    ("DELETE", f"{INV2}/filters/{{filter_id}}"): AD,
    ("POST", f"{DEP2}/deployments"): RM,
    # webhooks
    ("GET", f"{IOT}/integrations"): AD,
    ("POST", f"{IOT}/integrations"): AD,
    ("GET", f"{IOT}/integrations/{{integration_id}}"): AD,
    ("PUT", f"{IOT}/integrations/{{integration_id}}/credentials"): AD,
    ("DELETE", f"{IOT}/integrations/{{integration_id}}"): AD,
    ("GET", f"{IOT}/integrations/{{integration_id}}/deliveries"): AD,
}
# valid JSON for each write, so an allowed call reaches the handler (and finds nothing:
# every id below is made up, so no call changes what the others see); other writes get
# {}, which an allowed caller has refused as invalid (422) after the role check
BODIES: dict[tuple[str, str], object] = {
    ("POST", f"{U}/users"): {"email": "walk-{n}@example.com", "password": "longenough"},
    ("PUT", f"{U}/users/{{user_id}}"): {"roles": ["RBAC_ROLE_OBSERVER"]},
    ("POST", f"{U}/settings/tokens"): {"name": "walk", "expires_in": 60},
    ("POST", f"{DA}/devices"): {"identity_data": {"mac": "walk"}, "pubkey": "x"},
    ("PUT", f"{DA}/devices/{{device_id}}/auth/{{auth_id}}/status"): {"status": "accepted"},
    ("PUT", f"{INV}/devices/{{device_id}}/group"): {"group": "walk"},
    ("POST", f"{DEP}/deployments"): {"name": "w", "artifact_name": "none", "devices": ["x"]},
    ("POST", f"{DEP}/deployments/group/{{group}}"): {"name": "w", "artifact_name": "none"},
    ("PUT", f"{DEP}/deployments/{{deployment_id}}/status"): {"status": "paused"},
}


def management_routes(app) -> list[tuple[str, str, APIRoute]]:  # type: ignore[no-untyped-def]
    """(method, pattern, route) of every management route as the app serves it."""
    out = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not str(context.path).startswith(MGMT):
            continue
        # current_user looks the rule up by the route's own pattern: no include prefix
        assert context.path == route.path, (context.path, route.path)
        out.extend((method, route.path, route) for method in sorted(route.methods))
    return out


def depends_on_current_user(dependant) -> bool:  # type: ignore[no-untyped-def]
    return any(d.call is current_user or depends_on_current_user(d) for d in dependant.dependencies)


def test_every_management_route_has_a_rule_and_checks_it(client):
    routes = management_routes(client.app)
    missing = [f"{m} {p}" for m, p, _ in routes if (m, p) not in RULES]
    assert missing == [], "add these to RULES in services/roles.py"
    stale = sorted({f"{m} {p}" for m, p in RULES} - {f"{m} {p}" for m, p, _ in routes})
    assert stale == [], "RULES names routes the app does not have"
    unchecked = [
        f"{m} {p}"
        for m, p, route in routes
        if RULES[(m, p)].role is not None and not depends_on_current_user(route.dependant)
    ]
    assert unchecked == [], "these routes never call current_user, so no role is checked"


def test_the_rules_are_the_expected_ones():
    public = {k for k, rule in RULES.items() if rule.role is None}
    assert public == {("POST", LOGIN)}
    assert set(RULES) - public == set(EXPECTED)


def test_a_route_missing_from_the_table_is_refused(client, admin):
    extra = APIRouter()

    @extra.get("/api/management/v1/unlisted")
    def unlisted(_: CurrentUser) -> dict[str, str]:
        return {"reached": "yes"}

    client.app.include_router(extra)
    r = client.get("/api/management/v1/unlisted", headers=admin)
    assert r.status_code == 403
    assert r.json()["error"] == "GET /api/management/v1/unlisted has no role rule: refused"


def login(client, email: str, password: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    r = client.post(LOGIN, auth=(email, password))
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.text}"}


def pat(client, headers: dict[str, str], **body: object) -> dict[str, str]:  # type: ignore[no-untyped-def]
    r = client.post(TOKENS, json={"name": "ci", "expires_in": 3600, **body}, headers=headers)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.text}"}


@pytest.fixture
def credentials(client, admin) -> dict[tuple[str, str], dict[str, str]]:  # type: ignore[no-untyped-def]
    """(role, "jwt" | "pat") -> headers, for one user of each role."""
    out = {(AD, "jwt"): admin, (AD, "pat"): pat(client, admin)}
    for role in (RM, RO):
        email = f"{role}@example.com"
        r = client.post(
            USERS,
            json={"email": email, "password": "longenough", "roles": [ROLE_NAMES[role]]},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        out[(role, "jwt")] = login(client, email, "longenough")
        out[(role, "pat")] = pat(client, out[(role, "jwt")])
    return out


def concrete(pattern: str) -> str:
    return pattern.replace("{", "made-up-").replace("}", "")


def test_every_route_answers_every_role_as_expected(client, credentials):
    failures = []
    n = 0
    for (method, pattern), least in EXPECTED.items():
        for (role, kind), headers in credentials.items():
            n += 1
            body = BODIES.get((method, pattern), None if method == "GET" else {})
            if isinstance(body, dict) and "email" in body:
                body = {**body, "email": f"walk-{n}@example.com"}
            r = client.request(method, concrete(pattern), json=body, headers=headers)
            allowed = kind == "jwt" if least == "login" else RANK[role] >= RANK[least]
            if allowed and r.status_code in (401, 403):
                failures.append(f"{role} {kind}: {method} {pattern} refused: {r.text}")
            if not allowed:
                error = r.json().get("error", "") if r.status_code == 403 else ""
                if r.status_code != 403 or not error or "\n" in error:
                    failures.append(f"{role} {kind}: {method} {pattern} -> {r.status_code}")
    assert failures == []
    assert n == len(EXPECTED) * 6


def test_a_token_never_has_more_than_its_owner(client, credentials):
    r = client.post(
        TOKENS,
        json={"name": "up", "roles": ["RBAC_ROLE_PERMIT_ALL"]},
        headers=credentials[(RO, "jwt")],
    )
    assert r.status_code == 403
    assert "its owner has RBAC_ROLE_OBSERVER" in r.json()["error"]


def test_an_admins_read_only_token_can_only_read(client, admin):
    token = pat(client, admin, roles=["read-only"])
    assert client.get(f"{DEP}/deployments", headers=token).status_code == 200
    r = client.post(USERS, json={"email": "x@example.com", "password": "longenough"}, headers=token)
    assert r.status_code == 403
    me = client.get(f"{U}/users/me", headers=token).json()
    assert me["roles"] == ["RBAC_ROLE_OBSERVER"] and me["token_id"]


def test_a_token_cannot_make_another_token(client, admin):
    r = client.post(TOKENS, json={"name": "again"}, headers=pat(client, admin))
    assert r.status_code == 403
    assert "needs a login" in r.json()["error"]


def test_a_demoted_user_loses_its_rights_at_once_with_its_tokens(client, admin):
    r = client.post(
        USERS, json={"email": "ops@example.com", "password": "longenough"}, headers=admin
    )
    ops_id = r.json()["id"]
    assert r.json()["roles"] == ["RBAC_ROLE_PERMIT_ALL"]  # Mender's default
    ops = login(client, "ops@example.com", "longenough")
    ops_pat = pat(client, ops)
    assert client.get(USERS, headers=ops_pat).status_code == 200
    r = client.put(f"{USERS}/{ops_id}", json={"roles": ["RBAC_ROLE_OBSERVER"]}, headers=admin)
    assert r.status_code == 204
    for headers in (ops, ops_pat):  # the same JWTs as before: nothing in them changed
        assert client.get(USERS, headers=headers).status_code == 403
        assert client.get(f"{DEP}/deployments", headers=headers).status_code == 200
    assert client.get(f"{USERS}/{ops_id}", headers=admin).json()["roles"] == ["RBAC_ROLE_OBSERVER"]


def test_the_last_admin_can_be_neither_demoted_nor_deleted(client, admin):
    me = client.get(f"{U}/users/me", headers=admin).json()["id"]
    r = client.put(f"{USERS}/{me}", json={"roles": ["read-only"]}, headers=admin)
    assert r.status_code == 409
    assert r.json()["error"] == "the last admin cannot be demoted: make another user admin first"
    r = client.post(
        USERS,
        json={"email": "ro@example.com", "password": "longenough", "roles": ["read-only"]},
        headers=admin,
    )
    assert r.status_code == 201
    r = client.delete(f"{USERS}/{me}", headers=admin)
    assert r.status_code == 409
    assert r.json()["error"] == "the last admin cannot be deleted: make another user admin first"
    other = client.post(
        USERS, json={"email": "ad2@example.com", "password": "longenough"}, headers=admin
    ).json()["id"]
    assert (
        client.put(f"{USERS}/{me}", json={"roles": ["read-only"]}, headers=admin).status_code == 204
    )
    # now read-only: the admin-only route is closed to the same JWT
    assert (
        client.put(f"{USERS}/{other}", json={"roles": ["read-only"]}, headers=admin).status_code
        == 403
    )


def test_two_demotions_of_the_last_two_admins_at_once_leave_one(client, admin):
    """As two server processes would race (on PostgreSQL both would count two admins
    without the row locks of services/locks.py)."""
    import threading
    import time

    from sqlalchemy import func, select

    from pyupdate_server.db.models import User
    from pyupdate_server.errors import Conflict
    from pyupdate_server.services.roles import Role
    from pyupdate_server.services.users import create_user, set_role

    db = client.app.state.server.db
    with db.write() as session:
        other = create_user(session, "two@example.com", "longenough").id
    me = client.get(f"{U}/users/me", headers=admin).json()["id"]
    first_done = threading.Event()
    outcome: list[BaseException | None] = []

    def first() -> None:
        with db.write() as session:
            set_role(session, me, Role.READ_ONLY)
            first_done.set()
            time.sleep(0.5)  # the second demotion runs now, before this commits

    def second() -> None:
        first_done.wait(10)
        try:
            with db.write() as session:
                set_role(session, other, Role.READ_ONLY)
            outcome.append(None)
        except Conflict as exc:
            outcome.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert isinstance(outcome[0], Conflict)
    with db.read() as session:
        admins = session.scalar(
            select(func.count()).select_from(User).where(User.role == Role.ADMIN.value)
        )
    assert admins == 1


def test_unknown_and_unsupported_roles_are_refused_in_one_line(client, admin):
    body = {"email": "r@example.com", "password": "longenough"}
    r = client.post(USERS, json={**body, "roles": ["RBAC_ROLE_CI"]}, headers=admin)
    assert r.status_code == 400
    assert r.json()["error"].startswith("role RBAC_ROLE_CI is not supported")
    r = client.post(USERS, json={**body, "roles": ["root"]}, headers=admin)
    assert r.status_code == 400 and "known roles are" in r.json()["error"]
    r = client.post(USERS, json={**body, "roles": ["admin", "read-only"]}, headers=admin)
    assert r.status_code == 422
    r = client.put(f"{USERS}/x", json={"email": "new@example.com"}, headers=admin)
    assert r.status_code == 422  # only roles change here; never accepted and ignored


def test_roles_lists_mender_names(client, admin):
    names = [r["name"] for r in client.get(f"{U}/roles", headers=admin).json()]
    assert names == ["RBAC_ROLE_OBSERVER", "RBAC_ROLE_DEPLOYMENTS_MANAGER", "RBAC_ROLE_PERMIT_ALL"]


def test_a_release_manager_deploys_but_cannot_admit_devices(client, admin, credentials, tmp_path):
    from server_helpers import upload

    from pyupdate_testing.artifacts import write_test_artifact

    rm = credentials[(RM, "pat")]
    device = make_device(client, "rm-1")
    device_id = accept(client, admin, device)
    path = write_test_artifact(tmp_path / "a.mender", "rel-1")
    assert upload(client, rm, path).status_code == 201
    r = client.post(
        f"{DEP}/deployments",
        json={"name": "d", "artifact_name": "rel-1", "devices": [device_id]},
        headers=rm,
    )
    assert r.status_code == 201, r.text
    r = client.delete(f"{DA}/devices/{device_id}", headers=rm)
    assert r.status_code == 403
    assert r.json()["error"] == (
        f"DELETE {DA}/devices/{{device_id}} needs role RBAC_ROLE_PERMIT_ALL (admin); "
        "this request has RBAC_ROLE_DEPLOYMENTS_MANAGER (release-manager)"
    )


def test_users_and_tokens_made_before_roles_become_admins(tmp_path, database_url):
    from alembic import command
    from sqlalchemy import text

    from pyupdate_server.db.engine import Database
    from pyupdate_server.db.migrate import alembic_config

    db = Database(database_url or f"sqlite:///{tmp_path / 'm.db'}")
    try:
        with db.engine.connect() as conn:
            cfg = alembic_config(db.engine)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0003")
            conn.execute(
                text(
                    "INSERT INTO users (id, email, password_hash, created)"
                    " VALUES ('u1', 'old@example.com', 'x', '2026-12-01 00:00:00')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO api_tokens (id, user_id, name, expires, created)"
                    " VALUES ('t1', 'u1', 'ci', '2027-12-01 00:00:00', '2026-12-01 00:00:00')"
                )
            )
            conn.commit()
        db.migrate()
        with db.read() as session:
            roles = [
                session.execute(text(f"SELECT role FROM {table}")).scalar_one()
                for table in ("users", "api_tokens")
            ]
        assert roles == ["RBAC_ROLE_PERMIT_ALL", "RBAC_ROLE_PERMIT_ALL"]
    finally:
        db.dispose()
