"""Revision 0012 (names as TEXT) and `gradsweep db upgrade` from every older revision."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from gradsweep.cli import app
from gradsweep.storage.engine import HEAD_REVISION, alembic_config, open_engine

OLDER = [f"{n:04d}" for n in range(1, int(HEAD_REVISION))]
VIEWS = {"gs_trial_summary", "gs_trial_scores", "gs_static_vs_adaptive"}
NAME_COLUMNS = {
    "gs_studies": {"problem"},
    "gs_trials": {"key", "arm", "balancer", "node", "device", "pack"},
    "gs_epoch_metrics": {"task", "metric_name"},
}


def raw_engine(url: str):  # type: ignore[no-untyped-def]
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def migrate_to(url: str, revision: str, down: bool = False) -> None:
    raw = raw_engine(url)
    with raw.begin() as conn:
        if down:
            command.downgrade(alembic_config(conn), revision)
        else:
            command.upgrade(alembic_config(conn), revision)
    raw.dispose()


def name_column_types(url: str) -> dict[tuple[str, str], str]:
    inspector = inspect(raw_engine(url))
    return {
        (table, column["name"]): str(column["type"])
        for table, names in NAME_COLUMNS.items()
        for column in inspector.get_columns(table)
        if column["name"] in names
    }


@pytest.mark.parametrize("revision", OLDER)
def test_db_upgrade_works_from_every_older_revision(revision: str, db_url: str) -> None:
    migrate_to(db_url, revision)
    run = CliRunner().invoke(app, ["db", "upgrade", "--db", db_url])
    assert run.exit_code == 0, run.stderr
    engine = open_engine(db_url, read_only=True)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM gs_alembic_version")).scalar() == (
            HEAD_REVISION
        )
        for view in VIEWS:
            conn.execute(text(f"SELECT * FROM {view}")).all()
    assert VIEWS <= set(inspect(engine).get_view_names())
    if engine.dialect.name == "postgresql":
        assert set(name_column_types(db_url).values()) == {"TEXT"}


def test_postgres_names_become_text_and_come_back_on_downgrade(db_url: str) -> None:
    open_engine(db_url).dispose()
    if not db_url.startswith("postgresql"):
        # SQLite never enforces a VARCHAR's length: 0012 leaves its tables as they are
        assert "VARCHAR(30)" in name_column_types(db_url).values()
        return
    assert set(name_column_types(db_url).values()) == {"TEXT"}
    migrate_to(db_url, "0011", down=True)
    types = name_column_types(db_url)
    assert types[("gs_trials", "arm")] == "VARCHAR(30)" and types[("gs_trials", "key")] == (
        "VARCHAR(300)"
    )
    assert VIEWS <= set(inspect(raw_engine(db_url)).get_view_names())
    migrate_to(db_url, "head")
    assert set(name_column_types(db_url).values()) == {"TEXT"}


def test_a_users_view_on_the_names_stops_the_upgrade_in_one_line(
    db_url: str, tmp_path: Path
) -> None:
    """PostgreSQL cannot retype a column a view reads: 0012 remakes gradsweep's own views,
    not a user's; the upgrade stops in one line and leaves the schema at 0011."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite's columns are not retyped")
    migrate_to(db_url, "0011")
    raw = raw_engine(db_url)
    with raw.begin() as conn:
        conn.execute(text("CREATE VIEW my_keys AS SELECT key FROM gs_trials"))
    run = CliRunner().invoke(app, ["db", "upgrade", "--db", db_url])
    assert run.exit_code == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "cannot upgrade the schema from revision 0011 to" in run.stderr
    assert "view my_keys depends on column" in run.stderr and "[SQL" not in run.stderr
    with raw.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM gs_alembic_version")).scalar() == "0011"
    raw.dispose()
