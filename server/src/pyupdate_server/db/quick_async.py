"""PostgreSQL's polling reads on the event loop: `Database.aquick` without a thread.

A device's poll that finds nothing to do is three one-row SELECTs (its auth set, an
open deployment, an open dynamic group). Through SQLAlchemy in a worker thread each
cost a thread hop, a pool checkout and Core's execute: 2.1 ms of server CPU per idle
check against 0.4 ms on SQLite, and PostgreSQL could not hold 556 checks/s (one
million devices polling every 30 minutes) under 100 ms p99
(bench/results/server-scale-2026-12-08.md). Here each is one psycopg round trip on the
loop, on a small pool of autocommit connections that never overflows, with statements
prepared by psycopg after their first uses.

Errors come out as SQLAlchemy's, so the app's one handler maps a lost database to 503
with Retry-After whatever path met it (dialect.is_unavailable).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import psycopg
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

_NAMED = re.compile(r"(?<![:\w]):(\w+)")  # `:name` binds, not `::type` casts


def to_pyformat(sql: str) -> str:
    """Portable `:name` binds (what sqlite3 and text() take) as psycopg's `%(name)s`."""
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))


def conninfo(url: URL, connect_timeout: int, application_name: str) -> dict[str, Any]:
    """psycopg.connect's keywords for SQLAlchemy's URL (query items such as host= for
    a socket directory included)."""
    kwargs: dict[str, Any] = {
        key: value
        for key, value in (
            ("host", url.host),
            ("port", url.port),
            ("user", url.username),
            ("password", url.password),
            ("dbname", url.database),
        )
        if value is not None
    }
    for key, value in url.query.items():
        kwargs[key] = value if isinstance(value, str) else value[-1]
    return {"connect_timeout": connect_timeout, "application_name": application_name, **kwargs}


class AsyncQuickPool:
    """At most `size` connections of one event loop; a request waits for a free one.
    Used from another loop (a test's second client), it starts over with new ones."""

    def __init__(self, connect_kwargs: dict[str, Any], size: int) -> None:
        self._kwargs = connect_kwargs
        self._size = size
        self._sql: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)

    async def first(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        query = self._sql.get(sql)
        if query is None:
            query = self._sql[sql] = to_pyformat(sql)
        self._bind_loop()
        async with self._slots:
            pooled = bool(self._idle)
            try:
                return await self._first(query, params)
            except psycopg.OperationalError as exc:
                # a pooled connection the database dropped (a restart) fails once; the
                # retry opens a new one, and a database still gone fails that too
                if not pooled:
                    raise _as_sqlalchemy(sql, params, exc) from None
            try:
                return await self._first(query, params)
            except psycopg.Error as exc:
                raise _as_sqlalchemy(sql, params, exc) from None

    async def _first(self, query: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        conn = self._idle.pop() if self._idle else await self._connect()
        try:
            cur = await conn.execute(query, params)  # type: ignore[arg-type]
            row = await cur.fetchone()
        except psycopg.Error:
            if conn.broken or conn.closed:
                await conn.close()
            else:
                self._idle.append(conn)
            raise
        except BaseException:
            # cancelled mid-query (the device hung up): what the connection is doing is
            # unknown, so it is not reused
            conn.pgconn.finish()
            raise
        self._idle.append(conn)
        return tuple(row) if row is not None else None

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        try:
            return await psycopg.AsyncConnection.connect(autocommit=True, **self._kwargs)
        except OSError as exc:
            raise psycopg.OperationalError(str(exc)) from None

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        # connections and the semaphore of a loop that is gone (or another one): drop them
        self.close()
        self._loop = loop
        self._slots = asyncio.Semaphore(self._size)

    def close(self) -> None:
        """Close every idle connection (synchronously: at shutdown the loop may be gone)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.pgconn.finish()


def _as_sqlalchemy(sql: str, params: dict[str, Any], exc: psycopg.Error) -> DBAPIError:
    return DBAPIError.instance(
        sql,
        params,
        exc,
        psycopg.Error,
        connection_invalidated=isinstance(exc, psycopg.OperationalError),
    )
