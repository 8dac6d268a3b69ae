"""Names without a length limit: the columns that hold what a spec, a problem or a host
names (a problem's import path, trial keys, arm and balancer names, task and metric names,
the node, device and pack labels) become TEXT, so one spec stores the same on SQLite and
PostgreSQL. Before, PostgreSQL refused a 101-character task name (``value too long for
type character varying(100)``) in the middle of a launch that SQLite took. The study name
keeps its 200 characters: the spec checks that one.

SQLite never enforces a VARCHAR's length, so it is left as it is (rebuilding its tables
would change nothing it stores). PostgreSQL cannot change the type of a column a view reads:
gradsweep's views are dropped first and made again, from their own definitions, after.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# table → (column, its length before this revision)
WIDENED: dict[str, tuple[tuple[str, int], ...]] = {
    "gs_studies": (("problem", 300),),
    "gs_trials": (
        ("key", 300),
        ("arm", 30),
        ("balancer", 30),
        ("node", 300),
        ("device", 100),
        ("pack", 200),
    ),
    "gs_epoch_metrics": (("task", 100), ("metric_name", 100)),
}
# every gradsweep view, each after those it reads (gs_static_vs_adaptive reads gs_trial_scores)
VIEWS = ("gs_trial_summary", "gs_trial_scores", "gs_static_vs_adaptive")


def _retype(to_text: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    definitions = _view_definitions()
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    for table, columns in WIDENED.items():
        for column, length in columns:
            new_type = "TEXT" if to_text else f"VARCHAR({length})"
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {new_type}")
    for name in VIEWS:
        if name in definitions:
            op.execute(f"CREATE VIEW {name} AS {definitions[name]}")


def _view_definitions() -> dict[str, str]:
    """gradsweep's views as PostgreSQL keeps them (those that exist), to make them again."""
    rows = op.get_bind().execute(
        sa.text(
            "SELECT viewname, definition FROM pg_views "
            "WHERE schemaname = current_schema() AND viewname IN :names"
        ).bindparams(sa.bindparam("names", expanding=True)),
        {"names": list(VIEWS)},
    )
    return {str(name): str(definition).rstrip("; \n") for name, definition in rows}


def upgrade() -> None:
    _retype(to_text=True)


def downgrade() -> None:
    """Back to the limits (fails, changing nothing, where a stored name is longer)."""
    _retype(to_text=False)
