"""Alembic environment: always called with a live connection from gradsweep.storage.engine."""

from __future__ import annotations

from alembic import context

from gradsweep.storage.migrations import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=None,
    version_table=VERSION_TABLE,
    render_as_batch=True,
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
