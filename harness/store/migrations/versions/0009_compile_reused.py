"""Whether a torch.compile run's cold compile figure was measured by an earlier run of the same compile key and
reused (harness.measure.compile_cost), rather than compiled cold by the run itself.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("compile_cold_reused", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("compile_cold_reused")
