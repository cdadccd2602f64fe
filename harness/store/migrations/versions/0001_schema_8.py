"""Schema 8: the last layout the harness upgraded by hand, before Alembic.

Creates every table on an empty database. On a database made by an older harness (schema 1-8, a
`meta` table and no `alembic_version`), creates the tables it lacks and adds the columns it lacks:
every change up to schema 8 was additive. Then applies the data corrections those upgrades made.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BASELINE = sa.MetaData()
sa.Table("delegation_coverage", BASELINE,
         sa.Column("model", sa.String(128), primary_key=True, nullable=False),
         sa.Column("resolution", sa.Integer(), primary_key=True, nullable=False),
         sa.Column("batch", sa.Integer(), primary_key=True, nullable=False),
         sa.Column("form", sa.String(16), primary_key=True, nullable=False),
         sa.Column("backend", sa.String(32), primary_key=True, nullable=False),
         sa.Column("op_type", sa.String(128), primary_key=True, nullable=False),
         sa.Column("kernel", sa.Integer(), primary_key=True, nullable=False),
         sa.Column("depthwise", sa.Boolean(), primary_key=True, nullable=False),
         sa.Column("partitioner", sa.String(32), nullable=False),
         sa.Column("op_class", sa.String(64), nullable=False, index=True),
         sa.Column("delegated_nodes", sa.Integer(), nullable=False),
         sa.Column("portable_nodes", sa.Integer(), nullable=False),
         sa.Column("delegated_flops", sa.BigInteger(), nullable=False),
         sa.Column("portable_flops", sa.BigInteger(), nullable=False),
         )
sa.Table("hosts", BASELINE,
         sa.Column("id", sa.Integer(), primary_key=True, nullable=False),
         sa.Column("hostname", sa.String(255), nullable=False),
         sa.Column("cpu_model", sa.String(255), nullable=False),
         sa.Column("logical_cores", sa.Integer(), nullable=True),
         sa.Column("os", sa.String(255), nullable=False),
         sa.Column("machine", sa.String(64), nullable=False),
         sa.UniqueConstraint("hostname", "cpu_model", "logical_cores", "os", "machine"),
         )
sa.Table("meta", BASELINE,
         sa.Column("key", sa.String(64), primary_key=True, nullable=False),
         sa.Column("value", sa.String(255), nullable=False),
         )
sa.Table("model_flops", BASELINE,
         sa.Column("model", sa.String(128), primary_key=True, nullable=False),
         sa.Column("resolution", sa.Integer(), primary_key=True, nullable=False),
         sa.Column("batch", sa.Integer(), primary_key=True, nullable=False),
         sa.Column("form", sa.String(16), primary_key=True, nullable=False),
         sa.Column("op_class", sa.String(64), primary_key=True, nullable=False),
         sa.Column("flops", sa.BigInteger(), nullable=False),
         )
sa.Table("sweeps", BASELINE,
         sa.Column("id", sa.Integer(), primary_key=True, nullable=False),
         sa.Column("command", sa.Text(), nullable=False),
         sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
         sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
         sa.Column("status", sa.String(16), nullable=False, server_default='running'),
         )
sa.Table("host_peaks", BASELINE,
         sa.Column("id", sa.Integer(), primary_key=True, nullable=False),
         sa.Column("host_id", sa.Integer(), sa.ForeignKey("hosts.id"), nullable=False, index=True),
         sa.Column("target", sa.String(128), nullable=False),
         sa.Column("threads", sa.Integer(), nullable=False),
         sa.Column("gflops", sa.Float(), nullable=False),
         sa.Column("gemm_size", sa.Integer(), nullable=False),
         sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
         )
sa.Table("runs", BASELINE,
         sa.Column("id", sa.Integer(), primary_key=True, nullable=False),
         sa.Column("sweep_id", sa.Integer(), sa.ForeignKey("sweeps.id"), nullable=True, index=True),
         sa.Column("host_id", sa.Integer(), sa.ForeignKey("hosts.id"), nullable=False, index=True),
         sa.Column("model", sa.String(64), nullable=False, index=True),
         sa.Column("resolution", sa.Integer(), nullable=False),
         sa.Column("batch", sa.Integer(), nullable=False),
         sa.Column("form", sa.String(16), nullable=False),
         sa.Column("weights", sa.String(512), nullable=False),
         sa.Column("target", sa.String(128), nullable=False, index=True),
         sa.Column("backend", sa.String(32), nullable=False),
         sa.Column("device", sa.String(64), nullable=False),
         sa.Column("precision", sa.String(8), nullable=False, server_default='fp32'),
         sa.Column("threads", sa.Integer(), nullable=False),
         sa.Column("status", sa.String(16), nullable=False, index=True),
         sa.Column("error", sa.Text(), nullable=True),
         sa.Column("log", sa.Text(), nullable=True),
         sa.Column("imported", sa.Boolean(), nullable=False, server_default=sa.false()),
         sa.Column("parity_max_abs", sa.Float(), nullable=True),
         sa.Column("parity_rel", sa.Float(), nullable=True),
         sa.Column("first_ms", sa.Float(), nullable=True),
         sa.Column("warmup_iterations", sa.Integer(), nullable=True),
         sa.Column("iterations", sa.Integer(), nullable=True),
         sa.Column("min_ms", sa.Float(), nullable=True),
         sa.Column("median_ms", sa.Float(), nullable=True),
         sa.Column("mean_ms", sa.Float(), nullable=True),
         sa.Column("p90_ms", sa.Float(), nullable=True),
         sa.Column("p95_ms", sa.Float(), nullable=True),
         sa.Column("p99_ms", sa.Float(), nullable=True),
         sa.Column("max_ms", sa.Float(), nullable=True),
         sa.Column("std_ms", sa.Float(), nullable=True),
         sa.Column("cv", sa.Float(), nullable=True),
         sa.Column("median_ci_low_ms", sa.Float(), nullable=True),
         sa.Column("median_ci_high_ms", sa.Float(), nullable=True),
         sa.Column("other_cpu", sa.Float(), nullable=True),
         sa.Column("steal", sa.Float(), nullable=True),
         sa.Column("load_before", sa.Float(), nullable=True),
         sa.Column("load_after", sa.Float(), nullable=True),
         sa.Column("throttle_events", sa.Integer(), nullable=True),
         sa.Column("cpu_mhz", sa.Float(), nullable=True),
         sa.Column("noisy", sa.Boolean(), nullable=False, server_default=sa.false()),
         sa.Column("process_spread", sa.Float(), nullable=True),
         sa.Column("artifact_path", sa.Text(), nullable=True),
         sa.Column("artifact_key", sa.String(64), nullable=True),
         sa.Column("environment", sa.JSON(), nullable=True),
         sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
         sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
         )
sa.Table("op_profiles", BASELINE,
         sa.Column("id", sa.Integer(), primary_key=True, nullable=False),
         sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id"), nullable=False, index=True),
         sa.Column("op_name", sa.String(255), nullable=False),
         sa.Column("op_type", sa.String(128), nullable=True),
         sa.Column("op_class", sa.String(64), nullable=False, index=True),
         sa.Column("calls", sa.Integer(), nullable=False),
         sa.Column("total_ms", sa.Float(), nullable=False),
         )
sa.Table("samples", BASELINE,
         sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id"), primary_key=True, nullable=False),
         sa.Column("phase", sa.String(8), primary_key=True, nullable=False),
         sa.Column("iteration", sa.Integer(), primary_key=True, nullable=False),
         sa.Column("latency_ns", sa.BigInteger(), nullable=False),
         )

# Stored values that an older harness classified wrongly (each idempotent).
DATA_FIXES = (
    # schema < 7: a torch container's glue time under a name holding "Conv" (ConvFFN) was a convolution
    "UPDATE op_profiles SET op_class = 'elementwise' WHERE op_type LIKE '%(glue:%' AND op_class != 'elementwise'",
)


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    present = set(inspector.get_table_names())
    for table in BASELINE.sorted_tables:
        if table.name not in present:
            table.create(bind)
            continue
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in columns:
                op.add_column(table.name, sa.Column(column.name, column.type, nullable=column.nullable,
                                                    server_default=column.server_default))
    for fix in DATA_FIXES:
        op.execute(fix)
