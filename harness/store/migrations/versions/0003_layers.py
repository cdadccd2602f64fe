"""Layers timed alone (`harness layers`): runs.layer (the layer's signature; NULL for a whole model)
and runs.layer_count (how many times the model runs it).

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("layer", sa.String(255), nullable=True))
        batch.add_column(sa.Column("layer_count", sa.Integer(), nullable=True))
