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
