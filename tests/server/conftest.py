"""Fixtures for the server tests: an app per test on a temp data dir, a user, devices.

Every test that builds its app from the `settings` fixture (or its database from
`database_url`) runs twice: on SQLite, and on a real PostgreSQL server that this
session starts in a temporary cluster (`pg_cluster`, ../conftest.py), one fresh
database per test. The modules in SQLITE_ONLY test what only SQLite has.

Tests marked `s3` run a third time: on SQLite with the artifacts in a real S3-compatible
server (`rclone serve s3`, pyupdate_testing/s3.py) that this session starts, one key
prefix per test in one bucket. Unmarked tests keep the local artifact store.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_helpers import ADMIN

from pyupdate_server.app import create_app
from pyupdate_server.settings import Settings
from pyupdate_testing import postgres, s3

ENGINES = ("sqlite", "postgresql")
SQLITE_ONLY = {
    # SQLite's own files and failures: their modes, a full disk under the database file
    "test_private_files": "file modes of server.db and its WAL",
    "test_storage_full": "SQLite's disk-full error",
    # a 20 s timing test of the event loop's fast path; the PostgreSQL path is
    # measured by bench/, and test_postgresql.py races real processes
    "test_abuse_load": "timing of the SQLite polling path",
}
BUCKET = "pyupdate-test"
# (engine, store) for tests marked s3: both engines on local files, and the object store
# once (on SQLite: what the store does does not depend on the engine)
WITH_S3 = [("sqlite", "local"), ("postgresql", "local"), ("sqlite", "s3")]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "s3: runs once more with the artifacts in S3 (rclone)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" in metafunc.fixturenames and metafunc.definition.get_closest_marker("s3"):
        ids = [engine if store == "local" else f"{engine}-{store}" for engine, store in WITH_S3]
        metafunc.parametrize(("engine", "store"), WITH_S3, ids=ids, scope="function")
    elif "engine" in metafunc.fixturenames:
        module = metafunc.module.__name__.rsplit(".", 1)[-1]
        engines = getattr(metafunc.module, "ENGINES", None) or (
            ("sqlite",) if module in SQLITE_ONLY else ENGINES
        )
        metafunc.parametrize("engine", engines, scope="function")


_names = itertools.count()


@pytest.fixture
def pg_database(
    pg_cluster: postgres.PostgresCluster, new_pg_database: Callable[[], tuple[str, str]]
) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test; its URL."""
    name, url = new_pg_database()
    yield url
    pg_cluster.drop_database(name)


@pytest.fixture(scope="module", params=ENGINES)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database for a whole module, on each engine in turn (for module-scoped apps)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'server.db'}"
        return
    cluster = request.getfixturevalue("pg_cluster")
    name, url = request.getfixturevalue("new_pg_database")()
    yield url
    cluster.drop_database(name)


@pytest.fixture
def database_url(engine: str, request: pytest.FixtureRequest) -> str | None:
    """None on SQLite (the data dir's server.db), a fresh database's URL on PostgreSQL."""
    if engine == "sqlite":
        return None
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[s3.S3Server]:
    """One `rclone serve s3` for the session, with the bucket BUCKET."""
    reason = s3.unavailable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"s3: {reason} (make test should have installed it)")
        pytest.skip(f"s3: {reason}")
    with s3.s3_server() as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture
def store() -> str:
    """Where artifact files go: "local" unless the test is marked s3 (then parametrized)."""
    return "local"


@pytest.fixture
def storage_settings(store: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings that select `store`: a fresh key prefix in BUCKET for S3."""
    if store == "local":
        return {}
    server: s3.S3Server = request.getfixturevalue("s3_server")
    return server.settings(f"s3://{BUCKET}/t{os.getpid()}-{next(_names)}")


@pytest.fixture
def settings(
    tmp_path: Path, database_url: str | None, storage_settings: dict[str, str]
) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        secret_key="test-secret-0123456789abcdef0123456789abcdef",
        database_url=database_url,
        **storage_settings,  # type: ignore[arg-type]
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def admin_token(client: TestClient) -> str:
    state = client.app.state.server  # type: ignore[attr-defined]
    from pyupdate_server.services.users import create_user

    with state.db.write() as session:
        create_user(session, *ADMIN)
    response = client.post("/api/management/v1/useradm/auth/login", auth=ADMIN)
    assert response.status_code == 200, response.text
    return response.text


@pytest.fixture
def admin(admin_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token}"}
