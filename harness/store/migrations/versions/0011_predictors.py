"""Latency predictors (`harness predict fit`): per target and host, a cost model per kernel kind as data, the
per-call overhead, what fusion timing found, and the uuids of the runs it was fitted on.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("threads", sa.Integer(), nullable=False),
        sa.Column("precision", sa.String(8), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("fitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("overhead_ms", sa.Float(), nullable=False),
        sa.Column("costs", sa.JSON(), nullable=False),
        sa.Column("training_runs", sa.JSON(), nullable=False),
        sa.Column("fusion", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_predictors_uuid", "predictors", ["uuid"], unique=True)
    op.create_index("ix_predictors_host_id", "predictors", ["host_id"])


def downgrade() -> None:
    op.drop_index("ix_predictors_host_id", "predictors")
    op.drop_index("ix_predictors_uuid", "predictors")
    op.drop_table("predictors")
