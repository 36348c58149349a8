"""Run Alembic migrations programmatically at startup (an upgrade never loses data)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from pyupdate_server.db import dialect

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", str(engine.url) if engine else "sqlite://")
    return cfg


def upgrade(engine: Engine) -> None:
    cfg = alembic_config(engine)
    # processes starting at once upgrade one after the other: on SQLite the migration's
    # transaction takes the write lock at BEGIN (engine.py), on PostgreSQL it takes an
    # advisory lock first; both are held until the commit below
    with engine.execution_options(immediate=True).connect() as conn:
        dialect.lock_for_migration(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    """The schema revision of the database behind `conn` (None: no schema yet)."""
    return MigrationContext.configure(conn).get_current_revision()
