"""Engine and sessions: SQLite in WAL mode with BEGIN IMMEDIATE, or PostgreSQL.

On SQLite a write session takes the database's write lock at BEGIN, not at its
first write: two devices polling at once then decide one after the other on fresh
data, instead of both reading the same state and one failing at commit.

On PostgreSQL writers run side by side (READ COMMITTED); the services take row locks
(`SELECT ... FOR UPDATE`) on exactly what a decision reads, so the same rules hold
with any number of server processes (docs/management-api.md, "PostgreSQL").
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from pyupdate_server.db import dialect
from pyupdate_server.db.quick_async import AsyncQuickPool, conninfo
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
        else:
            dialect.ping_when_idle(self.engine)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(
            self.engine.execution_options(immediate=True), expire_on_commit=False
        )
        self._write_lock: threading.Lock | nullcontext[None] = (
            threading.Lock() if self.is_sqlite else nullcontext()
        )
        path = sqlite_path(url) if self.is_sqlite else None
        self._process_lock: WriterQueue | nullcontext[None] = (
            WriterQueue(path.with_name(path.name + "-writers"))
            if path is not None and path.name != ":memory:"
            else nullcontext()
        )
        self._local = threading.local()
        self._raw: list[sqlite3.Connection] = []
        self._raw_lock = threading.Lock()
        self._quick_pool: AsyncQuickPool | None = None
        if not self.is_sqlite:
            self._quick_pool = AsyncQuickPool(
                conninfo(parsed, dialect.CONNECT_TIMEOUT, dialect.APPLICATION_NAME),
                dialect.QUICK_POOL,
            )

    @property
    def safe_url(self) -> str:
        return dialect.safe_url(self.url)

    def quick(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """First row of one read-only statement on SQLite, for the polling path.

        This skips the session, the pool and BEGIN: one statement in autocommit mode
        already reads a consistent WAL snapshot, at a tenth of the cost. Write portable
        SQL with `:name` placeholders (PostgreSQL's aquick takes them too).
        """
        conn = getattr(self._local, "conn", None)
        if conn is None:
            path = sqlite_path(self.url)
            assert path is not None, "quick is SQLite's; PostgreSQL's polling reads are aquick"
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._raw_lock:
                self._raw.append(conn)
        row = conn.execute(sql, params).fetchone()
        return tuple(row) if row is not None else None

    async def aquick(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """`quick` for async handlers: in place on SQLite (a local file read costs less
        than the hop to a thread), on PostgreSQL one round trip on the event loop
        (db/quick_async.py), which waits on the socket and never holds the loop."""
        if self._quick_pool is None:
            return self.quick(sql, params)
        return await self._quick_pool.first(sql, params)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction that commits on success and rolls back on any error.

        On SQLite, writers queue first, those of this process on a lock and those of
        every process (serve --workers N) on a file lock: SQLite's own busy handler
        sleeps in growing steps (up to 100 ms), which under contention turns a 1 ms
        transaction into a long tail; a released flock wakes the next writer at once.
        """
        with self._write_lock, self._process_lock, self._writer() as session, session.begin():
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
        if isinstance(self._process_lock, WriterQueue):
            self._process_lock.close()
        with self._raw_lock:
            for conn in self._raw:
                conn.close()
            self._raw.clear()
        self._local = threading.local()
        if self._quick_pool is not None:
            self._quick_pool.close()
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


class WriterQueue:
    """An exclusive flock on `<database>-writers`, held around each write transaction:
    the kernel wakes the next process's writer the moment it is released, where SQLite's
    busy handler would sleep. Only a queue: SQLite's own lock still guards the data (a
    writer that does not take this, such as the sqlite3 shell, is merely slower).

    Opened per process (a descriptor inherited across fork would be one lock shared by
    parent and workers, excluding nothing); used under the process's thread lock."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> None:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


def sqlite_path(url: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(url[len(prefix) :]) if url.startswith(prefix) else None
