"""roles on users and personal access tokens; the audit log

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-20 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Before roles every user could do everything: existing users and their tokens stay
# admins (services/roles.py, Role.ADMIN). The server default stays: dropping it would
# rebuild the table on SQLite, and rebuilding `users` with foreign keys on deletes every
# token (ON DELETE CASCADE). The server always writes the role itself.
_ADMIN = "RBAC_ROLE_PERMIT_ALL"


def upgrade() -> None:
    for table in ("users", "api_tokens"):
        # a plain ALTER TABLE ADD COLUMN on both engines: no table rebuild
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("role", sa.String(length=64), nullable=False, server_default=_ADMIN)
            )
    op.create_table(
        "audit_logs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("time", sa.DateTime(), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=36), nullable=False),
        sa.Column("actor_email", sa.String(length=256), nullable=False),
        sa.Column("token_id", sa.String(length=36), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=256), nullable=False),
        sa.Column("object_data", sa.JSON(), nullable=False),
        sa.Column("change", sa.Text(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_logs_time"), ["time"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_logs_actor_id"), ["actor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_logs_object_id"), ["object_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_logs_object_id"))
        batch_op.drop_index(batch_op.f("ix_audit_logs_actor_id"))
        batch_op.drop_index(batch_op.f("ix_audit_logs_time"))
    op.drop_table("audit_logs")
    for table in ("api_tokens", "users"):
        op.drop_column(table, "role")  # SQLite 3.35+ drops in place: no rebuild, no cascade
