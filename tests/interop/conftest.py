"""Fixtures for the interop tests: the real `pyupdate-server serve` that Debian's mender
client and mender-cli talk to, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pyupdate_testing.server import Server, live_server


@pytest.fixture(name="live_server", params=("sqlite", "postgresql"))
def live_server_fixture(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    """`pyupdate-server serve` on 127.0.0.1 with the harness's ADMIN user, on each
    database engine in turn (PostgreSQL: a fresh database in the session's cluster)."""
    if request.param == "sqlite":
        with live_server(tmp_path) as server:
            yield server
        return
    cluster = request.getfixturevalue("pg_cluster")
    name, url = request.getfixturevalue("new_pg_database")()
    try:
        with live_server(tmp_path, database_url=url) as server:
            yield server
    finally:
        cluster.drop_database(name)
