"""phased rollouts: phases, thresholds, pause, and the decision log of each deployment

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-14 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # existing deployments get the values of "every device at once, never paused"
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("phase_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("phases_started", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("failure_threshold", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("failure_unit", sa.String(length=8), nullable=True))
        batch_op.add_column(
            sa.Column("failure_action", sa.String(length=8), nullable=False, server_default="pause")
        )
        batch_op.add_column(sa.Column("success_threshold", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("success_unit", sa.String(length=8), nullable=True))
    with op.batch_alter_table("device_deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phase", sa.Integer(), nullable=True))
    op.create_table(
        "deployment_phases",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("deployment_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=True),
        sa.Column("batch_count", sa.Integer(), nullable=True),
        sa.Column("start_ts", sa.DateTime(), nullable=True),
        sa.Column("when_healthy", sa.Boolean(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("started", sa.DateTime(), nullable=True),
        sa.Column("healthy", sa.DateTime(), nullable=True),
        sa.Column("failures_accepted", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment_id", "number"),
    )
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment_id", sa.String(length=36), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=True),
        sa.Column("by", sa.String(length=256), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deployment_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deployment_events_deployment_id"), ["deployment_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("deployment_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deployment_events_deployment_id"))
    op.drop_table("deployment_events")
    op.drop_table("deployment_phases")
    with op.batch_alter_table("device_deployments", schema=None) as batch_op:
        batch_op.drop_column("phase")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        for column in (
            "success_unit",
            "success_threshold",
            "failure_action",
            "failure_unit",
            "failure_threshold",
            "phases_started",
            "phase_count",
            "paused",
        ):
            batch_op.drop_column(column)
