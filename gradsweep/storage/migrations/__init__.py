"""Alembic revisions of the results schema, run programmatically by the engine module."""

# Ours, not "alembic_version": Optuna's schema in the same database uses that name.
VERSION_TABLE = "gs_alembic_version"
