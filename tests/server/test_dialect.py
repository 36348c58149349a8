"""db/dialect.py, the one place that knows SQLite from PostgreSQL, on both engines."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from pyupdate_server.db import dialect
from pyupdate_server.db.engine import Database
from pyupdate_server.db.models import RateLimit
from pyupdate_server.errors import ConfigError


@pytest.fixture
def db(tmp_path, database_url):
    database = Database(database_url or f"sqlite:///{tmp_path / 'd.db'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///var/lib/pyupdate/server.db", "sqlite"),
        ("postgresql://u:p@db.example:5432/pyupdate", "postgresql+psycopg"),
        ("postgresql+psycopg://u@/pyupdate?host=/run/postgresql", "postgresql+psycopg"),
    ],
)
def test_supported_urls_get_our_driver(url, driver):
    assert dialect.parse_url(url).drivername == driver


@pytest.mark.parametrize(
    "url", ["mysql://u@h/db", "postgresql+psycopg2://u@h/db", "not a url", "sqlite+aiosqlite://"]
)
def test_other_urls_are_refused_with_one_line(url):
    with pytest.raises(ConfigError) as err:
        dialect.parse_url(url)
    assert "\n" not in str(err.value)


def test_safe_url_hides_the_password():
    assert "s3cret" not in dialect.safe_url("postgresql://u:s3cret@h:5432/db")


def test_count_hit_counts_and_starts_a_new_window(db):
    table = RateLimit.__table__
    with db.write() as s:
        assert dialect.count_hit(s, table, "k", now=1000, window=60) == (1, 1060)
        assert dialect.count_hit(s, table, "k", now=1001, window=60) == (2, 1060)
    with db.write() as s:  # the window is over: the count starts again
        assert dialect.count_hit(s, table, "k", now=1060, window=60) == (1, 1120)


def test_count_hit_of_one_new_key_by_two_transactions_at_once_never_errors(db):
    """The second INSERT waits for the first's commit, then becomes an UPDATE."""
    table = RateLimit.__table__
    results: list[object] = []

    def second() -> None:
        try:
            with db.write() as s:
                results.append(dialect.count_hit(s, table, "new", now=2000, window=60))
        except Exception as exc:  # the assertion below shows it
            results.append(exc)

    with db.write() as s:
        assert dialect.count_hit(s, table, "new", now=2000, window=60) == (1, 2060)
        thread = threading.Thread(target=second)
        thread.start()  # on SQLite it waits for our write lock, on PostgreSQL for the row
        time.sleep(0.3)
    thread.join(timeout=30)
    assert results == [(2, 2060)]
    with db.read() as s:
        assert s.scalar(select(RateLimit.count).where(RateLimit.key == "new")) == 2


def test_lost_connections_count_as_unavailable_other_errors_do_not(db, engine):
    from sqlalchemy.exc import IntegrityError, OperationalError

    assert not dialect.is_unavailable(ValueError("x"))
    assert not dialect.is_unavailable(IntegrityError("INSERT", {}, Exception("unique")))
    if engine == "sqlite":
        locked = OperationalError("BEGIN", {}, Exception("database is locked"))
        assert dialect.is_unavailable(locked)
    else:
        import psycopg

        lost = OperationalError("SELECT 1", {}, psycopg.OperationalError("server closed"))
        assert dialect.is_unavailable(lost)


# -- Database.aquick: the polling path's reads (db/quick_async.py on PostgreSQL) ----------


def test_quick_binds_become_pyformat_and_casts_and_percent_signs_stay():
    from pyupdate_server.db.quick_async import to_pyformat

    sql = "SELECT x::text FROM t WHERE a = :a AND b LIKE '5%' AND c = :c_2"
    assert to_pyformat(sql) == (
        "SELECT x::text FROM t WHERE a = %(a)s AND b LIKE '5%%' AND c = %(c_2)s"
    )


def test_aquick_reads_the_first_row_or_none_from_any_event_loop(db):
    """Two asyncio.run calls are two loops (as two test clients are): the PostgreSQL
    pool starts over on the second instead of failing on the first loop's objects."""
    import asyncio

    sql = "SELECT version_num FROM alembic_version WHERE version_num <> :none"
    for _ in range(2):
        row = asyncio.run(db.aquick(sql, {"none": "x"}))
        assert row is not None and isinstance(row[0], str)
        assert asyncio.run(db.aquick(sql + " AND 1 = :zero", {"none": "x", "zero": 0})) is None


def test_aquick_opens_a_new_connection_when_the_database_dropped_its_own(pg_database):
    """A PostgreSQL restart closes the pooled connections: the next read retries once on
    a new one instead of failing a device's poll."""
    import asyncio

    db = Database(pg_database)

    async def read_drop_read() -> tuple:
        assert await db.aquick("SELECT 1 WHERE 1 = :one", {"one": 1}) == (1,)
        with db.engine.connect() as conn:
            ended = conn.exec_driver_sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'pyupdate-server' AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend'"
            ).scalar()
        assert ended >= 1
        return await db.aquick("SELECT 2 WHERE 1 = :one", {"one": 1})

    try:
        assert asyncio.run(read_drop_read()) == (2,)
    finally:
        db.dispose()


def test_aquick_of_an_unreachable_database_is_unavailable_not_a_bug():
    import asyncio

    unreachable = Database("postgresql://u:p@127.0.0.1:9/nothing")
    try:
        with pytest.raises(Exception) as caught:
            asyncio.run(unreachable.aquick("SELECT 1", {}))
        assert dialect.is_unavailable(caught.value), repr(caught.value)
    finally:
        unreachable.dispose()


def test_aquick_cancelled_mid_query_drops_that_connection_and_goes_on(pg_database):
    """A device that hangs up cancels its request's read: the connection, whose query
    may still run, is closed instead of handed to the next poll."""
    import asyncio

    db = Database(pg_database)

    async def cancel_then_read() -> tuple:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(db.aquick("SELECT pg_sleep(:s)", {"s": 5}), 0.2)
        assert db._quick_pool is not None and db._quick_pool._idle == []
        return await db.aquick("SELECT 3 WHERE 1 = :one", {"one": 1})

    try:
        assert asyncio.run(cancel_then_read()) == (3,)
    finally:
        db.dispose()
