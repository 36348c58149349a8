"""`pyupdate-server db copy`: move an installation's records into an empty database.

Every table of the schema is copied row for row, ids included, so tokens, download
links and the devices' view of their deployments stay valid (the secret key and the
artifact files stay in the data dir: point the new server at the same one). The source
is read in one snapshot, so a server still running on it can be stopped afterwards; the
target is written in one transaction, so a failed copy leaves it empty.
"""

from __future__ import annotations

from sqlalchemy import Table, select

from pyupdate_server.db import dialect
from pyupdate_server.db.engine import Database, sqlite_path
from pyupdate_server.db.migrate import current_revision, head_revision
from pyupdate_server.db.models import Base
from pyupdate_server.errors import ConfigError, Conflict

# rate-limit counters last minutes; the target starts with fresh windows
SKIPPED = frozenset({"rate_limits"})
BATCH = 1000


def copy_database(source_url: str, target_url: str) -> dict[str, int]:
    """Copy every record from `source_url` into the empty `target_url`; rows per table."""
    if dialect.parse_url(source_url) == dialect.parse_url(target_url):
        raise ConfigError("db copy: --from and --to are the same database")
    path = sqlite_path(source_url)
    if path is not None and not path.is_file():
        raise ConfigError(f"db copy: {path}: no such database file")
    source, target = Database(source_url), Database(target_url)
    try:
        return _copy(source, target)
    finally:
        source.dispose()
        target.dispose()


def _copy(source: Database, target: Database) -> dict[str, int]:
    tables = [t for t in Base.metadata.sorted_tables if t.name not in SKIPPED]
    counts: dict[str, int] = {}
    with dialect.snapshot(source.engine) as src, src.begin():
        have, want = current_revision(src), head_revision()
        if have != want:
            raise ConfigError(
                f"db copy: {source.safe_url} has schema {have or 'none'}, this server "
                f"writes {want}: start this version of the server on it once first"
            )
        target.migrate()
        with target.engine.begin() as dst:
            for table in Base.metadata.sorted_tables:
                if dst.execute(select(1).select_from(table).limit(1)).first() is not None:
                    raise Conflict(
                        f"db copy: {target.safe_url} is not empty (table {table.name} has "
                        "rows): copy only into a new, empty database"
                    )
            for table in tables:
                counts[table.name] = _copy_table(src, dst, table)
            dialect.reset_sequences(dst, tables)
    return counts


def _copy_table(src, dst, table: Table) -> int:  # type: ignore[no-untyped-def]
    rows = 0
    result = src.execution_options(yield_per=BATCH).execute(select(table))
    for part in result.partitions():
        dst.execute(table.insert(), [dict(row._mapping) for row in part])
        rows += len(part)
    return rows
