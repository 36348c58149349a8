"""Engine and sessions: SQLite in WAL mode with BEGIN IMMEDIATE, or PostgreSQL.

On SQLite a write session takes the database's write lock at BEGIN, not at its
first write: two devices polling at once then decide one after the other on fresh
data, instead of both reading the same state and one failing at commit.

On PostgreSQL writers run side by side (READ COMMITTED); the services take row locks
(`SELECT ... FOR UPDATE`) on exactly what a decision reads, so the same rules hold
with any number of server processes (docs/management-api.md, "PostgreSQL").
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import anyio.to_thread
from sqlalchemy import Engine, TextClause, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from pyupdate_server.db import dialect
from pyupdate_server.errors import DatabaseUnavailable


class Database:
    """The database handle: read sessions, write sessions, and migrations."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = dialect.parse_url(url)
        self.dialect_name = parsed.get_backend_name()
        self.is_sqlite = self.dialect_name == dialect.SQLITE
        self.engine: Engine = create_engine(parsed, **dialect.engine_options(parsed))
        if self.is_sqlite:
            _sqlite_setup(self.engine)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(
            self.engine.execution_options(immediate=True), expire_on_commit=False
        )
        self._write_lock: threading.Lock | nullcontext[None] = (
            threading.Lock() if self.is_sqlite else nullcontext()
        )
        self._local = threading.local()
        self._raw: list[sqlite3.Connection] = []
        self._raw_lock = threading.Lock()
        self._texts: dict[str, TextClause] = {}
        self._quick_engine: Engine | None = None
        if not self.is_sqlite:
            self._quick_engine = create_engine(parsed, **dialect.quick_engine_options(parsed))

    def _quick_first(self, stmt: TextClause, params: dict[str, Any]) -> tuple[Any, ...] | None:
        assert self._quick_engine is not None
        with self._quick_engine.connect() as conn:
            row = conn.execute(stmt, params).first()
            return tuple(row) if row is not None else None

    @property
    def safe_url(self) -> str:
        return dialect.safe_url(self.url)

    def quick(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """First row of one read-only statement, for the polling path.

        On SQLite this skips the session, the pool and BEGIN: one statement in
        autocommit mode already reads a consistent WAL snapshot, at a tenth of
        the cost. Write portable SQL with `:name` placeholders (both sqlite3 and
        SQLAlchemy's text() take them).
        """
        path = sqlite_path(self.url) if self.is_sqlite else None
        if path is None:
            stmt = self._texts.get(sql)
            if stmt is None:
                stmt = self._texts[sql] = text(sql)
            assert self._quick_engine is not None
            try:
                return self._quick_first(stmt, params)
            except DBAPIError as exc:
                # no pre-ping on this pool: a connection the database dropped (a restart)
                # fails once, the pool discards it, and the retry opens a new one
                if not exc.connection_invalidated:
                    raise
                return self._quick_first(stmt, params)
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._raw_lock:
                self._raw.append(conn)
        row = conn.execute(sql, params).fetchone()
        return tuple(row) if row is not None else None

    async def aquick(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """`quick` for async handlers: in place on SQLite (a local file read costs less
        than the hop to a thread), in a worker thread on a networked database so a slow
        or lost server never holds the event loop."""
        if self.is_sqlite:
            return self.quick(sql, params)
        return await anyio.to_thread.run_sync(self.quick, sql, params)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction that commits on success and rolls back on any error.

        On SQLite, writers of this process queue on a lock first: SQLite's own busy
        handler sleeps in growing steps (up to 100 ms), which under contention turns
        a 1 ms transaction into a long tail.
        """
        with self._write_lock, self._writer() as session, session.begin():
            yield session

    def migrate(self) -> None:
        """Create or upgrade the schema; DatabaseUnavailable if the database cannot be
        reached (one line naming it and why)."""
        from pyupdate_server.db.migrate import upgrade

        try:
            upgrade(self.engine)
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise DatabaseUnavailable(f"database {self.safe_url}: {reason}") from None

    def ping(self) -> None:
        """One round trip; raises if the database does not answer (readiness)."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def dispose(self) -> None:
        with self._raw_lock:
            for conn in self._raw:
                conn.close()
            self._raw.clear()
        self._local = threading.local()
        if self._quick_engine is not None:
            self._quick_engine.dispose()
        self.engine.dispose()


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # pysqlite's own transaction handling would defer BEGIN; we emit it ourselves
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        immediate = conn.get_execution_options().get("immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def sqlite_path(url: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(url[len(prefix) :]) if url.startswith(prefix) else None
