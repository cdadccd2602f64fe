"""Alembic's entry point: always called by harness.store.database.migrate with an open connection."""
from alembic import context

from harness.store.schema import Base

connection = context.config.attributes["connection"]
# render_as_batch: SQLite cannot ALTER a column or constraint; batch mode copies the table instead.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
