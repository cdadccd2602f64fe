"""Where a hosted farm's device ran each layer (Qualcomm AI Hub: NPU, GPU or CPU), on the layer's op profile row.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("op_profiles") as batch:
        batch.add_column(sa.Column("compute_unit", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("op_profiles") as batch:
        batch.drop_column("compute_unit")
