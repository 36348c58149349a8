"""Everything that differs between SQLite and PostgreSQL, in one place.

The rest of the server speaks SQLAlchemy Core/ORM and portable SQL; what one engine
spells differently (an upsert, a lock around migrations, sequences after a bulk
copy, how a lost connection shows) lives here, and tests/server/test_dialect.py
runs each function on both engines.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Integer, Table, case, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from pyupdate_server.errors import ConfigError

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
# a constant of our own: every server process upgrading one database takes this lock
MIGRATION_LOCK = 0x70797570  # "pyup"
CONNECT_TIMEOUT = 5  # seconds: past this an unreachable database is reported, not waited on
SESSION_POOL = 24  # PostgreSQL connections for sessions (reads and writes), per process
APPLICATION_NAME = "pyupdate-server"  # what pg_stat_activity shows for our connections


def parse_url(url: str) -> URL:
    """`sqlite:///path` or `postgresql://user:pass@host:port/db`, as SQLAlchemy's URL
    with the driver we ship (psycopg 3); anything else is a ConfigError."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database_url {url!r} is not a URL") from None
    backend = parsed.get_backend_name()
    if backend == SQLITE and parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return parsed
    if backend in ("postgresql", "postgres") and parsed.drivername in (
        "postgresql",
        "postgres",
        "postgresql+psycopg",
    ):
        return parsed.set(drivername="postgresql+psycopg")
    raise ConfigError(
        f"database_url: {parsed.drivername!r} is not supported: "
        "use sqlite:///path or postgresql://user:password@host:port/database"
    )


def safe_url(url: str) -> str:
    """The URL for messages and logs: without the password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(invalid URL)"


def engine_options(url: URL) -> dict[str, object]:
    if url.get_backend_name() == SQLITE:
        return {
            "connect_args": {"check_same_thread": False, "timeout": 30},
            "pool_size": 8,
            "max_overflow": 32,
        }
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ConfigError(
            "database_url is PostgreSQL but psycopg is not installed: "
            "pip install 'pyupdate-server[postgresql]'"
        ) from None
    return {
        "connect_args": {"connect_timeout": CONNECT_TIMEOUT, "application_name": APPLICATION_NAME},
        # the same 24 at most as 8 + 16 overflow, but kept open: a connection returned
        # above pool_size is closed, and under 32 concurrent hand-outs a new one was opened
        # for most transactions (a PostgreSQL fork, and psycopg's connect in the server:
        # ~10 % of a hand-out's time in the profile, bench/results/server-scale-2026-12-07b.md)
        "pool_size": SESSION_POOL,
        "max_overflow": 0,
        "pool_timeout": 10,
        # no pool_pre_ping: ping_when_idle tests only what sat idle
    }


# After the database restarts, a pooled connection is dead; tested before use, service
# resumes by itself instead of failing a request per stale connection. pool_pre_ping
# tested every checkout: a round trip per transaction, on a busy server for connections
# used a moment ago. One used within this many seconds is alive or failed in use, and a
# failure in use invalidates the whole pool (SQLAlchemy's disconnect handling).
PING_AFTER_IDLE_S = 1.0


def ping_when_idle(engine: Engine) -> None:
    """PostgreSQL: test a pooled connection at checkout if it sat idle PING_AFTER_IDLE_S;
    a dead one is replaced (the pool retries the checkout on DisconnectionError)."""

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn, record) -> None:  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return  # new, or in use a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the driver's error for a dead socket, whichever it is
            raise DisconnectionError(str(exc).strip().splitlines()[0]) from exc
        if not alive:
            raise DisconnectionError("pooled connection failed its ping")


# The polling path's own pool (Database.aquick, db/quick_async.py): psycopg connections
# on the event loop, one SELECT per read. Never above its size, so no connection is
# opened and closed per request: a new one costs PostgreSQL a fork and a few ms of CPU,
# and at 8+16 a busy server opened one every third check
# (bench/results/server-scale-2026-12-07.md). A process holds at most
# SESSION_POOL + QUICK_POOL connections: docs/scale-out.md sizes max_connections from it.
QUICK_POOL = 16


def serializes_writers(session: Session) -> bool:
    """SQLite runs one write transaction at a time (Database.write: BEGIN IMMEDIATE), so
    what it read stays true until commit; PostgreSQL needs row locks for that."""
    return session.get_bind().dialect.name == SQLITE


@dataclass(frozen=True, slots=True)
class JsonSql:
    """How one engine reads the items of a JSON attribute, for inventory filters
    (services/filters.py). `elements` is a FROM item with one row per item of the value
    (each item of a list, or the value itself), as alias `e`; `{src}` is the JSON
    column or expression, `{key}` the bind of the attribute's name.

    Strings compare by code point on both engines (SQLite's BINARY collation, "C" on
    PostgreSQL), never by the database's locale.
    """

    elements: str
    present: str
    is_number: str
    is_string: str
    number: str
    string: str
    as_json: str  # a text column holding JSON, as JSON
    collate: str
    contains: str  # {s} contains {v}
    starts: str
    ends: str


_JSON_SQL = {
    SQLITE: JsonSql(
        elements="json_each({src}, {key}) AS e",
        present="json_type({src}, {key}) IS NOT NULL",
        is_number="e.type IN ('integer', 'real')",
        is_string="e.type = 'text'",
        number="e.value",
        string="e.value",
        as_json="{col}",
        collate="",
        contains="instr({s}, {v}) > 0",
        starts="substr({s}, 1, length({v})) = {v}",
        ends="substr({s}, -length({v})) = {v}",
    ),
    POSTGRESQL: JsonSql(
        elements="json_array_elements(CASE WHEN json_typeof(({src} -> CAST({key} AS text)))"
        " = 'array' THEN ({src} -> CAST({key} AS text))"
        " ELSE json_build_array(({src} -> CAST({key} AS text))) END) AS e(v)",
        present="({src} -> CAST({key} AS text)) IS NOT NULL",
        is_number="json_typeof(e.v) = 'number'",
        is_string="json_typeof(e.v) = 'string'",
        # CASE: a cast in a plain AND may run before the type test, and fail on a string
        number="CASE WHEN json_typeof(e.v) = 'number' THEN CAST(e.v #>> '{{}}' AS numeric) END",
        string="(e.v #>> '{{}}')",
        as_json="CAST({col} AS json)",
        collate=' COLLATE "C"',
        contains="strpos({s}, {v}) > 0",
        starts="left({s}, length({v})) = {v}",
        ends="right({s}, length({v})) = {v}",
    ),
}


def json_sql(session: Session) -> JsonSql:
    return _JSON_SQL[session.get_bind().dialect.name]


def json_path_key(session: Session, name: str) -> str:
    """The bound value that names attribute `name` in JsonSql's `{key}`: a JSON path on
    SQLite, the key itself on PostgreSQL."""
    if session.get_bind().dialect.name == SQLITE:
        return f'$."{name}"'
    return name


def insert(session_or_conn: Session | Connection, table: Table):  # type: ignore[no-untyped-def]
    """The dialect's INSERT construct: the one with `on_conflict_do_*`."""
    name = session_or_conn.get_bind().dialect.name
    return (postgresql.insert if name == POSTGRESQL else sqlite.insert)(table)


def count_hit(session: Session, table: Table, key: str, now: int, window: int) -> tuple[int, int]:
    """Add one to the fixed-window counter `key` and return (count, expires).

    One INSERT ... ON CONFLICT DO UPDATE: two processes counting a new key at once
    both succeed (one inserts, the other updates); an expired window starts over.
    """
    c = table.c
    fresh = c.expires <= now  # the stored window is over: this hit starts a new one
    stmt = insert(session, table).values(key=key, count=1, expires=now + window)
    stmt = stmt.on_conflict_do_update(
        index_elements=[c.key],
        set_={
            "count": case((fresh, 1), else_=c["count"] + 1),
            "expires": case((fresh, now + window), else_=c.expires),
        },
    ).returning(c["count"], c.expires)
    row = session.execute(stmt).one()
    return int(row[0]), int(row[1])


def snapshot(engine: Engine) -> Connection:
    """A connection whose transactions read one consistent snapshot of the database.

    SQLite's deferred BEGIN already does (WAL: the snapshot of the first read is kept
    until the end); PostgreSQL's default READ COMMITTED takes a new one per statement.
    """
    conn = engine.connect()
    if conn.dialect.name == POSTGRESQL:
        return conn.execution_options(isolation_level="REPEATABLE READ")
    return conn


def lock_for_migration(conn: Connection) -> None:
    """Several processes starting at once upgrade the schema one after the other.

    On SQLite the migration's BEGIN IMMEDIATE already excludes the others (migrate.py);
    on PostgreSQL an advisory lock held until the migration's transaction ends does.
    """
    if conn.dialect.name == POSTGRESQL:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})


def reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """After rows were copied in with their ids, the next generated id follows them."""
    if conn.dialect.name != POSTGRESQL:
        return  # SQLite's INTEGER PRIMARY KEY continues from the largest rowid
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, Integer):
            continue
        top = conn.scalar(select(func.max(pk[0])))
        conn.execute(
            text("SELECT setval(pg_get_serial_sequence(:t, :c), :v, :called)"),
            {"t": table.name, "c": pk[0].name, "v": top or 1, "called": top is not None},
        )


def is_unavailable(exc: BaseException) -> bool:
    """The database is gone (down, restarting, unreachable, out of connections), as
    opposed to a bug or a bad statement: the request may simply be tried again."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    try:
        import psycopg
    except ImportError:
        psycopg = None  # type: ignore[assignment]
    if psycopg is not None and isinstance(orig, psycopg.OperationalError):
        return True
    # SQLite: another process holds the write lock past busy_timeout
    return "database is locked" in str(orig)
