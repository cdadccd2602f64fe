"""The precision axis: each run's agreement with fp32 torch on held-out photographs, its calibration set, and
which ops of a low-precision artifact the runtime computes in int8 (precision_coverage).

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("agreement_images", sa.Integer(), nullable=True))
        for name in ("agreement_top1", "agreement_cosine", "agreement_cosine_min", "accuracy_top1"):
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))
        batch.add_column(sa.Column("held_out", sa.String(64), nullable=True))
        batch.add_column(sa.Column("eval_images", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("calibration", sa.String(64), nullable=True))
    op.create_table(
        "precision_coverage",
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("resolution", sa.Integer(), primary_key=True),
        sa.Column("batch", sa.Integer(), primary_key=True),
        sa.Column("form", sa.String(16), primary_key=True),
        sa.Column("backend", sa.String(32), primary_key=True),
        sa.Column("precision", sa.String(8), primary_key=True),
        sa.Column("op_type", sa.String(128), primary_key=True),
        sa.Column("kernel", sa.Integer(), primary_key=True),
        sa.Column("depthwise", sa.Boolean(), primary_key=True),
        sa.Column("op_class", sa.String(64), nullable=False),
        sa.Column("calibration", sa.String(64), nullable=True),
        sa.Column("low_nodes", sa.Integer(), nullable=False),
        sa.Column("float_nodes", sa.Integer(), nullable=False),
        sa.Column("low_flops", sa.BigInteger(), nullable=False),
        sa.Column("float_flops", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_precision_coverage_op_class", "precision_coverage", ["op_class"])


def downgrade() -> None:
    op.drop_index("ix_precision_coverage_op_class", "precision_coverage")
    op.drop_table("precision_coverage")
    with op.batch_alter_table("runs") as batch:
        for name in ("agreement_images", "agreement_top1", "agreement_cosine", "agreement_cosine_min", "accuracy_top1",
                     "held_out", "eval_images", "calibration"):
            batch.drop_column(name)
