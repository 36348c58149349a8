"""dynamic groups (saved inventory filters), scheduling, install windows, downgrades

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-21 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inventory_filters",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    # existing deployments: static, unscheduled, no window, downgrades refused
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dynamic", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("filter_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("filter_name", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("filter_terms", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("start_ts", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("end_ts", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("install_window", sa.String(length=11), nullable=True))
        batch_op.add_column(
            sa.Column("allow_downgrade", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index("ix_deployments_dynamic_status", ["dynamic", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_deployments_dynamic_status")
        for column in (
            "allow_downgrade",
            "install_window",
            "end_ts",
            "start_ts",
            "filter_terms",
            "filter_name",
            "filter_id",
            "dynamic",
        ):
            batch_op.drop_column(column)
    op.drop_table("inventory_filters")
