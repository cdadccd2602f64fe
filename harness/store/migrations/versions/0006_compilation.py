"""Compiled PyTorch (torch.compile): how each run's model was compiled, what compiling cost (cold and warm), its
graph breaks and whether it recompiled while timed.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INTEGERS = ("graphs", "graph_breaks", "recompiles")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("compile_mode", sa.String(32), nullable=True))
        batch.add_column(sa.Column("compile_ms", sa.Float(), nullable=True))
        batch.add_column(sa.Column("compile_warm_ms", sa.Float(), nullable=True))
        for name in INTEGERS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))
        batch.add_column(sa.Column("break_reasons", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name in ("compile_mode", "compile_ms", "compile_warm_ms", *INTEGERS, "break_reasons"):
            batch.drop_column(name)
