"""Mixed int8 recipes: the op classes a run's quantizer left in float (runs.keep_float, "" for none), part of what
makes two runs measurements of the same thing (the latest-run index) and of the precision coverage's key, so a
mixed recipe's coverage is kept apart from full int8's.

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BEFORE = ["model", "resolution", "form", "host_id", "batch", "weights", "target", "threads", "precision", "layer",
          "status"]
AFTER = ["model", "resolution", "form", "host_id", "batch", "weights", "target", "threads", "precision", "keep_float",
         "layer", "status"]
COVERAGE_KEY = ["model", "resolution", "batch", "form", "backend", "precision", "op_type", "kernel", "depthwise"]
COVERAGE_VALUES = ["op_class", "calibration", "low_nodes", "float_nodes", "low_flops", "float_flops"]


def _coverage_table(name: str, keep_float: bool) -> None:
    key = COVERAGE_KEY + (["keep_float"] if keep_float else [])
    op.create_table(
        name,
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("resolution", sa.Integer(), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(16), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("precision", sa.String(8), nullable=False),
        *([sa.Column("keep_float", sa.String(255), nullable=False, server_default="")] if keep_float else []),
        sa.Column("op_type", sa.String(128), nullable=False),
        sa.Column("kernel", sa.Integer(), nullable=False),
        sa.Column("depthwise", sa.Boolean(), nullable=False),
        sa.Column("op_class", sa.String(64), nullable=False),
        sa.Column("calibration", sa.String(64), nullable=True),
        sa.Column("low_nodes", sa.Integer(), nullable=False),
        sa.Column("float_nodes", sa.Integer(), nullable=False),
        sa.Column("low_flops", sa.BigInteger(), nullable=False),
        sa.Column("float_flops", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*key),
    )


def _rebuild_coverage(keep_float: bool) -> None:
    """The coverage table again with (or without) keep_float in its key, its rows copied across (as full int8's)."""
    op.drop_index("ix_precision_coverage_op_class", "precision_coverage")
    op.rename_table("precision_coverage", "precision_coverage_old")
    _coverage_table("precision_coverage", keep_float)
    columns = ", ".join(COVERAGE_KEY + COVERAGE_VALUES)
    where = "" if keep_float else " WHERE keep_float = ''"
    op.execute(f"INSERT INTO precision_coverage ({columns}) SELECT {columns} FROM precision_coverage_old{where}")
    op.drop_table("precision_coverage_old")
    op.create_index("ix_precision_coverage_op_class", "precision_coverage", ["op_class"])


def upgrade() -> None:
    op.drop_index("ix_runs_latest", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("keep_float", sa.String(255), nullable=False, server_default=""))
    op.create_index("ix_runs_latest", "runs", AFTER)
    _rebuild_coverage(keep_float=True)


def downgrade() -> None:
    _rebuild_coverage(keep_float=False)
    op.execute("DELETE FROM runs WHERE keep_float != ''")  # a mixed recipe's runs would read as full int8
    op.drop_index("ix_runs_latest", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("keep_float")
    op.create_index("ix_runs_latest", "runs", BEFORE)
