from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from gradsweep.storage.engine import (
    alembic_config,
    database_url,
    head_revision,
    open_engine,
    parse_url,
    resolve_url,
    sqlite_url,
    table_names,
)
from gradsweep.storage.errors import StorageError


def test_url_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRADSWEEP_DB", raising=False)
    assert resolve_url(None) == "sqlite:///gradsweep.db"
    monkeypatch.setenv("GRADSWEEP_DB", "sqlite:////tmp/x.db")
    assert resolve_url(None) == "sqlite:////tmp/x.db"
    monkeypatch.setenv("GRADSWEEP_DB", "/tmp/y.db")  # a path there too
    assert resolve_url(None) == "sqlite:////tmp/y.db"
    assert resolve_url("postgresql://u@h/d") == "postgresql://u@h/d"
    assert parse_url("postgresql://u@h/d").drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:/x", "not a database URL or path: 'sqlite:/x' \\(a SQLite file: "),
        ("postgres//h/db", "not a database URL or path: 'postgres//h/db'"),
        ("mysql:", "not a database URL or path"),
        ("mysql://root@127.0.0.1/test", "unsupported database 'mysql'"),
        ("sqlite://", "in-memory SQLite database cannot be shared"),
        ("sqlite:////no/such/folder/x.db", "folder /no/such/folder does not exist"),
        ("postgresql://postgres@127.0.0.1:1/x", "cannot open database .*Connection refused"),
    ],
)
def test_bad_urls_are_one_line(url: str, message: str) -> None:
    with pytest.raises(StorageError, match=message) as error:
        open_engine(url)
    assert "\n" not in str(error.value)


def test_a_path_is_the_url_of_that_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert database_url("cancer.db") == sqlite_url(tmp_path / "cancer.db")
    assert database_url("./x/../y.sqlite") == sqlite_url(tmp_path / "y.sqlite")
    assert database_url("/abs/a#b?.db") == "sqlite:////abs/a%23b%3F.db"
    assert database_url("~/studies.db") == sqlite_url(tmp_path / "home" / "studies.db")
    assert database_url("./a:b.db") == sqlite_url(tmp_path / "a:b.db")
    assert database_url("sqlite:///rel.db") == "sqlite:///rel.db"  # a URL as it is


def test_fresh_database_gets_the_whole_schema(db_url: str) -> None:
    tables = set(table_names(open_engine(db_url)))
    assert {
        "gs_studies",
        "gs_trials",
        "gs_epoch_metrics",
        "gs_weight_trace",
        "gs_comparisons",
        "gs_alembic_version",
    } <= tables
    assert "alembic_version" not in tables  # that name is Optuna's


def insert_old_study(conn: Any) -> None:
    """Study 'old' as revision 0001 stored it."""
    conn.execute(
        text(
            "INSERT INTO gs_studies (id, name, spec_text, spec_hash, problem, task_names, "
            "objective_name, objective_direction, status, created_at, updated_at) VALUES "
            "(1, 'old', 'spec', 'h', 'toy', '[\"a\"]', 'normalized_loss', 'min', 'completed', "
            "'2025-01-01', '2025-01-01')"
        )
    )


def test_a_database_at_the_first_revision_is_upgraded(db_url: str) -> None:
    raw = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    with raw.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        insert_old_study(conn)
        conn.execute(
            text(
                "INSERT INTO gs_trials (id, study_id, key, arm, balancer, params, seed, status) "
                "VALUES (1, 1, 'k', 'grid', 'static', '{}', 0, 'completed')"
            )
        )
    raw.dispose()
    engine = open_engine(db_url)
    assert "gs_weight_trace" in table_names(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT attempts, key FROM gs_trials")).one() == (0, "k")
        version = conn.execute(text("SELECT version_num FROM gs_alembic_version")).scalar()
    assert version == head_revision()


def test_a_database_newer_than_the_code_is_refused(db_url: str) -> None:
    engine = open_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE gs_alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StorageError, match="revision 9999 is newer than this gradsweep"):
        open_engine(db_url)


def test_read_only_engine_cannot_write(sqlite_url: str, tmp_path: Path) -> None:
    open_engine(sqlite_url).dispose()
    engine = open_engine(sqlite_url, read_only=True)
    with pytest.raises(Exception, match="readonly"), engine.begin() as conn:
        conn.execute(text("DELETE FROM gs_studies"))
    with pytest.raises(StorageError, match="no database at"):
        open_engine(f"sqlite:///{tmp_path / 'missing.db'}", read_only=True)


READ_COMMANDS = (
    ["status"],
    ["status", "old"],
    ["query", "studies"],
    ["query", "trials", "--study", "old"],
    ["compare", "old"],
    ["export", "old", "--out", "EXPORT"],
    ["report", "old", "--out", "REPORT"],
    ["resume", "old"],
)


@pytest.mark.parametrize("spelling", ["sqlite:///{}", "{}", "typo.db"])
@pytest.mark.parametrize("argv", READ_COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_commands_other_than_launch_never_create_a_database(
    argv: list[str], spelling: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mistyped file, as a URL, an absolute path or a bare one (from the working
    folder): the same one line, and no file."""
    from typer.testing import CliRunner

    from gradsweep.cli import app

    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "typo.db"
    argv = [
        a.replace("EXPORT", str(tmp_path / "x")).replace("REPORT", str(tmp_path / "r.html"))
        for a in argv
    ]
    run = CliRunner().invoke(app, [*argv, "--db", spelling.format(missing)])
    assert run.exit_code == 2 and run.stderr.startswith(f"error: no database at {missing}")
    assert len(run.stderr.strip().splitlines()) == 1 and not missing.exists()


@pytest.mark.parametrize("argv", [["status", "old"], ["query", "trials"], ["compare", "old"]])
def test_every_command_opens_an_older_database_the_same_way(
    argv: list[str], tmp_path: Path
) -> None:
    """A database at revision 0001 is upgraded by a read command as by launch; the read
    then answers (compare: with its own one-line error, as the study has no trials)."""
    from typer.testing import CliRunner

    from gradsweep.cli import app

    url = f"sqlite:///{tmp_path / 'old.db'}"
    raw = create_engine(url)
    with raw.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        insert_old_study(conn)
    raw.dispose()
    run = CliRunner().invoke(app, [*argv, "--db", url])
    assert "db upgrade" not in run.stderr and "revision" not in run.stderr, run.stderr
    assert run.exit_code in (0, 2) and "Traceback" not in run.stderr
    with raw.connect() as conn:
        assert (
            conn.execute(text("SELECT version_num FROM gs_alembic_version")).scalar()
            == head_revision()
        )


def test_the_head_revision_constant_is_alembics_head() -> None:
    """Opening a current database compares its version with HEAD_REVISION, not Alembic's
    scripts: a new migration must move the constant too."""
    from gradsweep.storage.engine import HEAD_REVISION

    assert HEAD_REVISION == head_revision()


@pytest.mark.parametrize(
    "name", ["a#b.db", "a?b.db", "a%3Fb.db", "100%.db", "s p a c e.db", "データ.db"]
)
def test_sqlite_url_names_the_file_exactly(name: str, tmp_path: Path) -> None:
    from gradsweep.storage.engine import sqlite_url

    path = tmp_path / name
    assert parse_url(sqlite_url(path)).database == str(path)


def test_the_file_uri_percent_encodes_what_sqlite_would_read_as_uri_syntax() -> None:
    from gradsweep.storage.engine import file_uri

    assert file_uri(Path("/x/a#b?c%d e.db"), "ro") == "file:///x/a%23b%3Fc%25d%20e.db?mode=ro"
    assert file_uri(Path("/x/é.db"), "rw") == "file:///x/%C3%A9.db?mode=rw"


def test_a_database_error_reads_as_one_clean_line(sqlite_url: str) -> None:
    """Without the SQL SQLAlchemy ran, its parameters or its error-reference link."""
    from sqlalchemy.exc import SQLAlchemyError

    from gradsweep.storage.errors import reason

    engine = open_engine(sqlite_url)
    with pytest.raises(SQLAlchemyError) as error, engine.connect() as conn:
        conn.execute(text("SELECT * FROM nope WHERE a = :a"), {"a": 1})
    assert "[SQL" in str(error.value) and "sqlalche.me" in str(error.value)
    assert reason(error.value) == "no such table: nope"
    wrapped = SQLAlchemyError("it broke\n(Background on this error at: https://sqlalche.me/e/20/x)")
    assert reason(wrapped) == "it broke"


def test_opening_a_current_database_imports_no_alembic(sqlite_url: str) -> None:
    """The read commands' start: one look at the revision row, no Alembic."""
    import subprocess
    import sys

    open_engine(sqlite_url).dispose()
    probe = (
        "import sys; from gradsweep.storage.engine import open_engine; "
        f"open_engine({sqlite_url!r}, read_only=True); print('alembic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
