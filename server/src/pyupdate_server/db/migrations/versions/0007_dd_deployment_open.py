"""device_deployments: index (deployment_id, final) for "is any device still open?"

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("device_deployments", schema=None) as batch_op:
        batch_op.create_index("ix_dd_deployment_open", ["deployment_id", "final"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("device_deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_dd_deployment_open")
