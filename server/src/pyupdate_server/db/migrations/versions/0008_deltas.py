"""delta updates: what each device was sent, generated deltas, delta jobs

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("generated", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("device_deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("bytes_sent", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("full_size", sa.BigInteger(), nullable=True))
    op.create_table(
        "delta_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("new_artifact_id", sa.String(length=36), nullable=False),
        sa.Column("old_checksum", sa.String(length=64), nullable=False),
        sa.Column("old_artifact_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("delta_artifact_id", sa.String(length=36), nullable=True),
        sa.Column("delta_size", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("finished", sa.DateTime(), nullable=True),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["new_artifact_id"], ["artifacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("new_artifact_id", "old_checksum"),
    )
    with op.batch_alter_table("delta_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_delta_jobs_new_artifact_id"), ["new_artifact_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_delta_jobs_status"), ["status"], unique=False)


def downgrade() -> None:
    op.drop_table("delta_jobs")
    with op.batch_alter_table("device_deployments", schema=None) as batch_op:
        batch_op.drop_column("full_size")
        batch_op.drop_column("bytes_sent")
        batch_op.drop_column("delivery")
    with op.batch_alter_table("artifacts", schema=None) as batch_op:
        batch_op.drop_column("generated")
