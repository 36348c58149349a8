"""The Alembic migrations build exactly the schema of db/models.py, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from pyupdate_server.db.engine import Database
from pyupdate_server.db.models import Base


def test_migrations_match_the_models(tmp_path, database_url):
    db = Database(database_url or f"sqlite:///{tmp_path / 'm.db'}")
    try:
        db.migrate()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        db.dispose()


def test_deployments_made_before_phases_keep_working(tmp_path, database_url):
    from alembic import command
    from sqlalchemy import text

    from pyupdate_server.db.migrate import alembic_config

    db = Database(database_url or f"sqlite:///{tmp_path / 'm.db'}")
    try:
        with db.engine.connect() as conn:
            cfg = alembic_config(db.engine)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0002")
            conn.execute(
                text(
                    "INSERT INTO deployments (id, name, artifact_name, status, aborted,"
                    " force_installation, retries, target, device_count, created)"
                    " VALUES ('d1', 'old', 'r1', 'inprogress', false, false, 0, 'all', 1,"
                    " '2026-12-01 00:00:00')"
                )
            )
            conn.commit()
        db.migrate()
        with db.read() as session:
            row = session.execute(
                text("SELECT paused, phase_count, phases_started, failure_action FROM deployments")
            ).one()
        assert tuple(row) == (False, 0, 0, "pause")
    finally:
        db.dispose()
