"""Login (Basic -> JWT), users, personal access tokens, and who may use the management API."""

from __future__ import annotations

import threading
import time

import jwt
from server_helpers import ADMIN, accept, make_device

LOGIN = "/api/management/v1/useradm/auth/login"
TOKENS = "/api/management/v1/useradm/settings/tokens"
USERS = "/api/management/v1/useradm/users"


def test_login_with_wrong_password_is_401(client, admin):
    r = client.post(LOGIN, auth=(ADMIN[0], "wrong password"))
    assert r.status_code == 401
    assert r.json()["error"] == "wrong username or password"


def test_login_without_basic_is_401(client):
    assert client.post(LOGIN).status_code == 401
    assert client.post(LOGIN, headers={"Authorization": "Basic !!!"}).status_code == 401


def test_pat_works_until_deleted(client, admin):
    r = client.post(TOKENS, json={"name": "ci", "expires_in": 3600}, headers=admin)
    assert r.status_code == 200
    pat = {"Authorization": f"Bearer {r.text}"}
    assert client.get(USERS, headers=pat).status_code == 200
    token_id = client.get(TOKENS, headers=admin).json()[0]["id"]
    assert client.delete(f"{TOKENS}/{token_id}", headers=admin).status_code == 204
    assert client.get(USERS, headers=pat).status_code == 401


def test_create_user_then_login(client, admin):
    r = client.post(
        USERS, json={"email": "ops@example.com", "password": "longenough"}, headers=admin
    )
    assert r.status_code == 201
    assert client.post(LOGIN, auth=("ops@example.com", "longenough")).status_code == 200
    dup = client.post(
        USERS, json={"email": "ops@example.com", "password": "longenough"}, headers=admin
    )
    assert dup.status_code == 409


def test_tampered_token_is_refused(client, admin):
    token = admin["Authorization"].split()[1]
    head, payload, sig = token.split(".")
    tampered = f"{head}.{payload}.{sig[:-2]}{'A' if sig[-2] != 'A' else 'B'}{sig[-1]}"
    r = client.get(USERS, headers={"Authorization": f"Bearer {tampered}"})
    assert r.status_code == 401
    assert "invalid token" in r.json()["error"]


def test_expired_token_is_refused(client, admin, settings):
    claims = jwt.decode(admin["Authorization"].split()[1], options={"verify_signature": False})
    claims["exp"] = int(time.time()) - 10
    expired = jwt.encode(claims, settings.secret_key, algorithm="HS256")
    r = client.get(USERS, headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401
    assert r.json()["error"] == "token expired"


def test_token_signed_with_another_secret_is_refused(client, admin):
    claims = jwt.decode(admin["Authorization"].split()[1], options={"verify_signature": False})
    forged = jwt.encode(claims, "another-secret-0123456789abcdef0123456789", algorithm="HS256")
    assert client.get(USERS, headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_device_token_cannot_use_management_api(client, admin):
    device = make_device(client, "nosy")
    accept(client, admin, device)
    r = client.get(USERS, headers=device.headers)
    assert r.status_code == 401
    assert "device tokens" in r.json()["error"]


def test_user_token_cannot_use_device_api(client, admin):
    r = client.put("/api/devices/v1/inventory/device/attributes", json=[], headers=admin)
    assert r.status_code == 401


def test_username_with_a_colon_is_refused_with_400(client, admin):
    r = client.post(
        USERS, json={"email": "a:b@example.com", "password": "longenough"}, headers=admin
    )
    assert r.status_code == 400
    assert "':'" in r.json()["error"]


def test_username_with_a_colon_is_refused_by_the_cli(tmp_path, capsys):
    from pyupdate_server.cli import main

    code = main(["user", "create", "--data-dir", str(tmp_path / "d"),
                 "--username", "a:b", "--password", "longenough"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "':'" in err


def test_the_last_user_cannot_be_deleted(client, admin):
    me = client.get(USERS, headers=admin).json()[0]["id"]
    r = client.delete(f"{USERS}/{me}", headers=admin)
    assert r.status_code == 409
    assert r.json()["error"] == "the last user cannot be deleted: create another one first"
    r = client.post(
        USERS, json={"email": "two@example.com", "password": "longenough"}, headers=admin
    )
    other = r.json()["id"]
    assert client.delete(f"{USERS}/{other}", headers=admin).status_code == 204
    assert client.delete(f"{USERS}/{me}", headers=admin).status_code == 409


def test_two_deletes_of_the_last_two_users_at_once_leave_one(client, admin):
    """As two server processes would race: the first delete has not committed yet when
    the second counts the users (on PostgreSQL both would count two without the lock)."""
    from pyupdate_server.errors import Conflict
    from pyupdate_server.services.users import create_user, delete_user

    db = client.app.state.server.db
    with db.write() as session:
        other = create_user(session, "two@example.com", "longenough").id
    me = client.get(USERS, headers=admin).json()
    me = next(u["id"] for u in me if u["id"] != other)
    first_deleted = threading.Event()
    outcome: list[BaseException | None] = []

    def first() -> None:
        with db.write() as session:
            delete_user(session, me)
            first_deleted.set()
            time.sleep(0.5)  # the second delete runs now, before this commits

    def second() -> None:
        first_deleted.wait(10)
        try:
            with db.write() as session:
                delete_user(session, other)
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
        from sqlalchemy import select

        from pyupdate_server.db.models import User

        assert list(session.scalars(select(User.id))) == [other]
