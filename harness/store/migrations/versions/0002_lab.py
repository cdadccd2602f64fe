"""The lab: hosts told apart by their CPU's ISA, stable UUIDs for merging, published runs.

- hosts.isa joins the host identity: "AMD EPYC" names Zen 3 machines without AVX-512 and Zen 4
  machines with it. Runs that recorded the ISA (runs.environment, since schema 8) move to a host
  row with that ISA; runs that did not stay on the row with an empty one.
- runs, sweeps and host_peaks get a UUID, given at creation, so `harness merge` can tell a row it
  already holds from a new one.
- runs.published / runs.citation: latencies copied from a paper, never mixed with measured ones.
- Nanosecond latencies and FLOP counts become 64-bit on PostgreSQL (SQLite integers always are).

Revision ID: 0002
Revises: 0001
"""
import json
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

HOST_IDENTITY = ("hostname", "cpu_model", "logical_cores", "os", "machine")
# SQLite reflects the old unnamed UNIQUE constraint without a name; batch mode names it by this convention.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}


def _old_host_constraint(bind) -> str:
    for found in sa.inspect(bind).get_unique_constraints("hosts"):
        if found["name"] and set(found["column_names"]) == set(HOST_IDENTITY):
            return found["name"]
    return "uq_hosts_" + "_".join(HOST_IDENTITY)


def upgrade() -> None:
    bind = op.get_bind()
    old_constraint = _old_host_constraint(bind)
    with op.batch_alter_table("hosts", naming_convention=NAMING, recreate="auto") as batch:
        batch.add_column(sa.Column("isa", sa.String(255), nullable=False, server_default=""))
        batch.drop_constraint(old_constraint, type_="unique")
        batch.create_unique_constraint("uq_hosts_identity", [*HOST_IDENTITY, "isa"])
    _split_hosts_by_isa(bind)

    for table in ("runs", "sweeps", "host_peaks"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("uuid", sa.String(36), nullable=True))
        rows = sa.table(table, sa.column("id", sa.Integer), sa.column("uuid", sa.String))
        for (row_id,) in bind.execute(sa.select(rows.c.id)).all():
            bind.execute(rows.update().where(rows.c.id == row_id).values(uuid=str(uuid.uuid4())))
        with op.batch_alter_table(table) as batch:
            batch.alter_column("uuid", existing_type=sa.String(36), nullable=False)
            batch.create_index(f"ix_{table}_uuid", ["uuid"], unique=True)

    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("published", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("citation", sa.Text(), nullable=True))

    if bind.dialect.name != "sqlite":
        for table, column in (("samples", "latency_ns"), ("model_flops", "flops"),
                              ("delegation_coverage", "delegated_flops"), ("delegation_coverage", "portable_flops")):
            op.alter_column(table, column, type_=sa.BigInteger(), existing_nullable=False)


def _split_hosts_by_isa(bind) -> None:
    """Give every ISA a run recorded its own host row, and move those runs to it."""
    hosts = sa.table("hosts", sa.column("id", sa.Integer), *(sa.column(c) for c in HOST_IDENTITY),
                     sa.column("isa", sa.String))
    runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("host_id", sa.Integer),
                    sa.column("environment", sa.Text))
    by_host: dict[int, dict[str, list[int]]] = {}
    for run_id, host_id, environment in bind.execute(sa.select(runs.c.id, runs.c.host_id, runs.c.environment)):
        facts = environment if isinstance(environment, dict) else json.loads(environment or "null") or {}
        by_host.setdefault(host_id, {}).setdefault(facts.get("isa") or "", []).append(run_id)
    for host_id, groups in by_host.items():
        isas = [isa for isa in groups if isa]
        if not isas:
            continue
        identity = bind.execute(sa.select(*(getattr(hosts.c, c) for c in HOST_IDENTITY))
                                .where(hosts.c.id == host_id)).one()._asdict()
        if "" not in groups:  # every run knows its ISA: the row takes the first, others get new rows
            bind.execute(hosts.update().where(hosts.c.id == host_id).values(isa=isas.pop(0)))
        for isa in isas:
            new_id = bind.execute(hosts.insert().values(**identity, isa=isa).returning(hosts.c.id)).scalar_one()
            bind.execute(runs.update().where(runs.c.id.in_(groups[isa])).values(host_id=new_id))
