"""What a run costs besides latency: load times, export and build times, artifact and parameter bytes,
the process's memory before loading and at its peaks, the model's own share, GPU memory.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FLOATS = ("load_ms", "load_warm_ms", "export_ms", "build_ms", "rss_before_mb", "peak_load_mb", "peak_timing_mb",
          "model_peak_mb", "gpu_peak_mb")
BIG = ("artifact_bytes", "param_bytes")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name in FLOATS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))
        for name in BIG:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("peak_is_lifetime", sa.Boolean(), nullable=True))
