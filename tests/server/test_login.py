"""Login under attack: limits per source and per user held in the database, hashing in a
pool of its own, the same work whether or not the user exists, UTF-8 credentials."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading

import pytest
from fastapi.testclient import TestClient
from server_helpers import ADMIN

from pyupdate_server.app import create_app
from pyupdate_server.auth import passwords
from pyupdate_server.auth.passwords import PasswordPool
from pyupdate_server.errors import TooManyRequests
from pyupdate_server.services.users import create_user

LOGIN = "/api/management/v1/useradm/auth/login"


def _basic(raw: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def test_login_failures_per_user_lock_that_user_even_with_the_right_password(client, admin):
    limit = client.app.state.server.settings.login_failures_per_user
    for _ in range(limit):
        assert client.post(LOGIN, auth=(ADMIN[0], "wrong password")).status_code == 401
    r = client.post(LOGIN, auth=ADMIN)
    assert r.status_code == 429
    assert "failed logins" in r.json()["error"]
    assert int(r.headers["Retry-After"]) > 0


def test_login_attempts_per_source_are_limited_whatever_the_username(settings):
    with TestClient(create_app(settings.replace(login_attempts_per_source=5))) as client:
        codes = [
            client.post(LOGIN, auth=(f"nobody{i}@example.com", "x" * 9)).status_code
            for i in range(8)
        ]
    assert codes == [401] * 5 + [429] * 3


def test_login_limit_is_shared_by_server_processes_on_one_database(settings):
    """Two apps on one data dir stand for two `serve` processes behind a load balancer."""
    with (
        TestClient(create_app(settings.replace(login_attempts_per_source=4))) as one,
        TestClient(create_app(settings.replace(login_attempts_per_source=4))) as two,
    ):
        codes = [c.post(LOGIN, auth=("a@example.com", "x" * 9)).status_code for c in [one, two] * 3]
    assert codes == [401] * 4 + [429] * 2


def test_unknown_user_costs_the_same_hash_as_a_known_one(client, admin, monkeypatch):
    calls: list[int] = []
    real = hashlib.scrypt

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs["n"])
        return real(*args, **kwargs)

    passwords.dummy_hash()  # made once, outside the count
    monkeypatch.setattr(passwords.hashlib, "scrypt", counting)
    assert client.post(LOGIN, auth=(ADMIN[0], "wrong password")).status_code == 401
    assert client.post(LOGIN, auth=("nobody@example.com", "wrong password")).status_code == 401
    assert len(calls) == 2 and calls[0] == calls[1]


def test_passwords_are_hashed_in_their_own_pool_not_the_device_routes_one(
    client, admin, monkeypatch
):
    threads: list[str] = []
    real = passwords.verify_password

    def recording(password: str, stored: str) -> bool:
        threads.append(threading.current_thread().name)
        return real(password, stored)

    monkeypatch.setattr("pyupdate_server.services.users.verify_password", recording)
    assert client.post(LOGIN, auth=ADMIN).status_code == 200
    assert threads and threads[0].startswith("password")


def test_password_pool_refuses_callers_beyond_its_queue():
    async def scenario() -> None:
        pool = PasswordPool(workers=1, queue=1)
        gate = threading.Event()
        first = asyncio.ensure_future(pool.run(gate.wait))
        second = asyncio.ensure_future(pool.run(gate.wait))
        await asyncio.sleep(0.05)
        with pytest.raises(TooManyRequests):
            await pool.run(gate.wait)
        gate.set()
        assert await first and await second
        pool.shutdown()

    asyncio.run(scenario())


@pytest.mark.parametrize("password", ["pässwörd-é", "price-in-€-euro"])
def test_utf8_basic_credentials_log_in(client, password):
    with client.app.state.server.db.write() as session:
        create_user(session, "intl@example.com", password)
    assert (
        client.post(LOGIN, headers=_basic(f"intl@example.com:{password}".encode())).status_code
        == 200
    )


def test_latin1_basic_credentials_from_older_clients_log_in(client):
    with client.app.state.server.db.write() as session:
        create_user(session, "latin@example.com", "mot-de-passe-é")
    raw = "latin@example.com:mot-de-passe-é".encode("latin-1")
    assert client.post(LOGIN, headers=_basic(raw)).status_code == 200
